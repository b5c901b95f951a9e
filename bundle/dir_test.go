package bundle_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// An OCI layout directory, as go-containerregistry writes it, opens like
// an archive: its images read with their digests, by offset.
func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	img := verifytest.RandomImage(t, 40<<10, 3)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{bundle.AnnotationRefName: "example.com/app:v1"})); err != nil {
		t.Fatal(err)
	}
	a, err := bundle.OpenPath(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.Seekable() || a.Compression() != bundle.None || !a.Contents().MetadataFirst {
		t.Fatalf("seekable %v, compression %s, metadata first %v", a.Seekable(), a.Compression(), a.Contents().MetadataFirst)
	}
	got, err := a.Image(name.MustParseReference("example.com/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if want, have := digests(t, img), digests(t, got); !equalHashes(want, have) {
		t.Fatalf("digests %v, want %v", have, want)
	}
	for _, h := range digests(t, img)[1:] {
		rc, err := a.Blob(h)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc) // fails unless the bytes hash to h
		rc.Close()
		if err != nil || n == 0 {
			t.Fatalf("blob %s: %d bytes, %v", h, n, err)
		}
	}
	if _, err := bundle.OpenDir(context.Background(), t.TempDir()); !errors.Is(err, bundle.ErrNotAnArchive) {
		t.Fatalf("empty directory: %v", err)
	}
}
