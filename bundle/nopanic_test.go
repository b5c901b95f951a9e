package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// Each case once panicked; now it is an error.
func TestWriteRejectsBadNames(t *testing.T) {
	blobs := newMemBlobs()
	good := verifytest.ImageOf(t, blobs.data, verifytest.RandomImage(t, 1<<10, 1), "docker.io/rancher/x:v1")
	cases := map[string]struct{ name, tag string }{
		"tag not in name":    {"x", "latest"},
		"tag longer":         {"a", "latest-and-longer"},
		"other tag":          {"docker.io/rancher/x:v1", "v2"},
		"unparsable":         {"UPPER/Case:v1", "v1"},
		"empty name":         {"", ""},
		"tag on digest name": {"docker.io/rancher/x@sha256:" + good.Descriptor.Digest.Hex, "v1"},
	}
	for what, tc := range cases {
		img := good
		img.Name, img.Tag = tc.name, tc.tag
		err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, blobs)
		if !errors.Is(err, bundle.ErrBadName) {
			t.Errorf("%s (%q, %q): err = %v, want ErrBadName", what, tc.name, tc.tag, err)
		}
	}
	for _, ok := range []struct{ name, tag string }{
		{"docker.io/rancher/x:v1", "v1"},
		{"docker.io/rancher/x@" + good.Descriptor.Digest.String(), ""},
		{"localhost:5000/x:latest", "latest"},
	} {
		img := good
		img.Name, img.Tag = ok.name, ok.tag
		if err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, blobs); err != nil {
			t.Errorf("%q, %q: %v", ok.name, ok.tag, err)
		}
	}
}

func TestWriteNilArguments(t *testing.T) {
	blobs := newMemBlobs()
	img := verifytest.ImageOf(t, blobs.data, verifytest.RandomImage(t, 1<<10, 1), "docker.io/rancher/x:v1")
	if err := bundle.Write(context.Background(), nil, []bundle.Image{img}, blobs); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("nil writer: %v", err)
	}
	if err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("nil blobs: %v", err)
	}
	if err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, blobs, nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("nil option: %v", err)
	}
	if _, err := bundle.NewCompressor(nil, bundle.Zstd, 0); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("NewCompressor(nil): %v", err)
	}
	path := filepath.Join(t.TempDir(), "b.tar")
	if err := bundle.WriteFileAtomic(context.Background(), path, nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("WriteFileAtomic(nil): %v", err)
	}
}

func TestWithCompressionRejectsBadValues(t *testing.T) {
	blobs := newMemBlobs()
	img := verifytest.ImageOf(t, blobs.data, verifytest.RandomImage(t, 1<<10, 1), "docker.io/rancher/x:v1")
	bad := map[string]struct {
		c     bundle.Compression
		level int
		want  error
	}{
		"unknown codec":   {"brotli", 0, bundle.ErrUnknownCompression},
		"empty codec":     {"", 0, bundle.ErrUnknownCompression},
		"zstd level 23":   {bundle.Zstd, 23, bundle.ErrBadLevel},
		"zstd negative":   {bundle.Zstd, -1, bundle.ErrBadLevel},
		"gzip level 10":   {bundle.Gzip, 10, bundle.ErrBadLevel},
		"gzip negative":   {bundle.Gzip, -5, bundle.ErrBadLevel},
		"none with level": {bundle.None, 3, bundle.ErrBadLevel},
	}
	for what, tc := range bad {
		err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, blobs, bundle.WithCompression(tc.c, tc.level))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", what, err, tc.want)
		}
		if _, err := bundle.NewCompressor(io.Discard, tc.c, tc.level); !errors.Is(err, tc.want) {
			t.Errorf("NewCompressor %s: err = %v, want %v", what, err, tc.want)
		}
	}
	for _, ok := range []struct {
		c     bundle.Compression
		level int
	}{{bundle.Zstd, 0}, {bundle.Zstd, 1}, {bundle.Zstd, 19}, {bundle.Gzip, 9}, {bundle.None, 0}} {
		if err := bundle.Write(context.Background(), io.Discard, []bundle.Image{img}, blobs, bundle.WithCompression(ok.c, ok.level)); err != nil {
			t.Errorf("%s level %d: %v", ok.c, ok.level, err)
		}
	}
}

func TestReadSideNilArguments(t *testing.T) {
	if _, err := bundle.Open(context.Background(), nil, 10); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("Open(nil): %v", err)
	}
	if _, _, err := bundle.Decompress(nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("Decompress(nil): %v", err)
	}
	if _, err := bundle.ReadContents(context.Background(), nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("ReadContents(nil): %v", err)
	}
	var zero bundle.Archive
	if err := zero.Close(); err != nil {
		t.Errorf("zero Archive Close: %v", err)
	}
	blobs := newMemBlobs()
	img := verifytest.ImageOf(t, blobs.data, verifytest.RandomImage(t, 1<<10, 1), "docker.io/rancher/x:v1")
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs); err != nil {
		t.Fatal(err)
	}
	a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Image(nil); !errors.Is(err, bundle.ErrNilArgument) {
		t.Errorf("Image(nil): %v", err)
	}
}
