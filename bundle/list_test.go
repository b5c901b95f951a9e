package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// readLog records the byte ranges read through it.
type readLog struct {
	ra     io.ReaderAt
	mu     sync.Mutex
	ranges [][2]int64
}

func (r *readLog) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ra.ReadAt(p, off)
	r.mu.Lock()
	r.ranges = append(r.ranges, [2]int64{off, off + int64(n)})
	r.mu.Unlock()
	return n, err
}

func (r *readLog) reset() { r.mu.Lock(); r.ranges = nil; r.mu.Unlock() }

func (r *readLog) touched(span [2]int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.ranges {
		if g[0] < span[1] && span[0] < g[1] {
			return true
		}
	}
	return false
}

// dataSpans maps each entry of a plain tar to where its data lies.
func dataSpans(t *testing.T, b []byte) map[string][2]int64 {
	t.Helper()
	br := bytes.NewReader(b)
	tr := tar.NewReader(br)
	out := map[string][2]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		off := int64(len(b)) - int64(br.Len())
		out[h.Name] = [2]int64{off, off + h.Size}
	}
}

// Listing a ferry bundle takes each platform from its index.json entry and
// reads no config: only index.json and the manifests, for layer counts and
// sizes.
func TestListReadsNoConfigOfAFerryBundle(t *testing.T) {
	blobs := verifytest.Blobs{}
	var images []bundle.Image
	for i, os := range []string{"linux", "windows", "linux"} {
		img := verifytest.WithPlatform(t, verifytest.RandomImage(t, 256, 2), os, "")
		images = append(images, verifytest.ImageOf(t, blobs, img, fmt.Sprintf("r.example/app%d:v1", i)))
	}
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithCompression(bundle.None, 0)); err != nil {
		t.Fatal(err)
	}
	spans := dataSpans(t, buf.Bytes())
	log := &readLog{ra: bytes.NewReader(buf.Bytes())}
	a, err := bundle.Open(context.Background(), log, int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	log.reset() // Open reads every entry's first bytes to classify it
	got := a.Contents().Images()
	if len(got) != len(images) {
		t.Fatalf("listed %d images, want %d", len(got), len(images))
	}
	for i, img := range images {
		m, err := img.Parsed()
		if err != nil {
			t.Fatal(err)
		}
		if p := got[i].Platform; p == nil || p.OS != img.Descriptor.Platform.OS || got[i].Layers != 2 {
			t.Errorf("image %d: platform %v, %d layers; want %s, 2", i, p, got[i].Layers, img.Descriptor.Platform)
		}
		if log.touched(spans[bundle.BlobPath(m.Config.Digest)]) {
			t.Errorf("image %d: its config was read", i)
		}
		if !log.touched(spans[bundle.BlobPath(img.Descriptor.Digest)]) {
			t.Errorf("image %d: its manifest was not read, so the read log sees nothing", i)
		}
	}
}

// Without a platform in index.json, the config is where it comes from.
func TestListReadsTheConfigWhenIndexHasNoPlatform(t *testing.T) {
	blobs := verifytest.Blobs{}
	img := verifytest.ImageOf(t, blobs, verifytest.WithPlatform(t, verifytest.RandomImage(t, 256, 1), "windows", "10.0.17763.1"), "r.example/win:v1")
	img.Descriptor.Platform = nil
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs, bundle.WithCompression(bundle.None, 0)); err != nil {
		t.Fatal(err)
	}
	a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got := a.Contents().Images()
	want := v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}
	if len(got) != 1 || got[0].Platform == nil || !got[0].Platform.Equals(want) {
		t.Fatalf("listed %+v, want one image of %s", got, want.String())
	}
}
