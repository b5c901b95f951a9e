package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/reorder"
)

func openBytes(t testing.TB, b []byte) *bundle.Archive {
	t.Helper()
	a, err := bundle.Open(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// digests lists an image's manifest, config and layer digests.
func digests(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m, c}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

func TestOpenReadsImagesAsWritten(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	for _, c := range []bundle.Compression{bundle.None, bundle.Gzip, bundle.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			out := write(t, images, blobs, bundle.WithCompression(c, 0))
			a := openBytes(t, out)
			if a.Compression() != c || a.Seekable() != (c != bundle.Gzip) {
				t.Fatalf("compression %s, seekable %v", a.Compression(), a.Seekable())
			}
			for _, want := range images {
				ref, _ := name.ParseReference(want.Name)
				img, err := a.Image(ref)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := img.RawManifest()
				if !bytes.Equal(raw, want.Manifest) {
					t.Errorf("%s: manifest bytes differ", want.Name)
				}
				cfg, _ := img.RawConfigFile()
				if !bytes.Equal(cfg, want.Config) {
					t.Errorf("%s: config bytes differ", want.Name)
				}
				m, _ := want.Parsed()
				layers, _ := img.Layers()
				for i, l := range layers {
					rc, err := l.Compressed()
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, blobs.data[m.Layers[i].Digest]) {
						t.Errorf("%s layer %d: %v, %d bytes", want.Name, i, err, len(got))
					}
				}
				// The same digests go-containerregistry's own reader sees.
				if c == bundle.None {
					tag := ref.(name.Tag)
					tb, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }, &tag)
					if err != nil {
						t.Fatal(err)
					}
					if a, b := digests(t, img), digests(t, tb); !equalHashes(a, b) {
						t.Errorf("%s: Open sees %v, tarball.Image %v", want.Name, a, b)
					}
				}
			}
		})
	}
}

func equalHashes(a, b []v1.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenSeekTableReadsOnlyWhatItReturns(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	out := write(t, images, blobs, bundle.WithCompression(bundle.Zstd, 0))
	a := openBytes(t, out)
	if !a.Seekable() {
		t.Fatal("zstd bundle not seekable")
	}
	opened := a.Inflated()
	ref, _ := name.ParseReference(images[1].Name)
	img, err := a.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	var read int64
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	spent := a.Inflated() - opened
	t.Logf("open: %d bytes inflated; image: %d layer bytes cost %d; archive is %d bytes", opened, read, spent, len(out))
	if spent > read*11/10+64<<10 {
		t.Errorf("reading %d layer bytes inflated %d", read, spent)
	}
	if opened > 64<<10 {
		t.Errorf("opening inflated %d bytes", opened)
	}
}

// BlobOffset points at a blob's bytes in the tar stream: in a plain tar
// they are the file's bytes at that offset.
func TestBlobOffset(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	out := write(t, images, blobs, bundle.WithCompression(bundle.None, 0))
	a := openBytes(t, out)
	ref, err := name.ParseReference(images[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	img, err := a.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range digests(t, img)[1:] { // config and layers
		off, size, err := a.BlobOffset(h)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if got, _, _ := v1.SHA256(bytes.NewReader(out[off : off+size])); got != h {
			t.Errorf("%s: %d bytes at %d hash to %s", h, size, off, got)
		}
	}
	if _, _, err := a.BlobOffset(v1.Hash{Algorithm: "sha256", Hex: "00"}); !errors.Is(err, bundle.ErrNotFound) {
		t.Errorf("unknown blob: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	blobs := newMemBlobs()
	out := write(t, twoImages(t, blobs), blobs)
	a := openBytes(t, out)
	if _, err := a.Image(name.MustParseReference("example.com/nope:1")); !errors.Is(err, bundle.ErrNotFound) {
		t.Errorf("unknown image: %v", err)
	}
	if _, err := a.Blob(v1.Hash{Algorithm: "sha256", Hex: "00"}); !errors.Is(err, bundle.ErrNotFound) {
		t.Errorf("unknown blob: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("hello"), out[:len(out)/2]} {
		if _, err := bundle.Open(context.Background(), bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, bundle.ErrNotAnArchive) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
}

func TestOpenDockerArchive(t *testing.T) {
	img := verifytest.RandomImage(t, 10<<10, 2)
	tag, _ := name.NewTag("example.com/app:1")
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	a := openBytes(t, buf.Bytes())
	got, err := a.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digests(t, got), digests(t, img); !equalHashes(a, b) {
		t.Errorf("Open sees %v, want %v", a, b)
	}
	idx, err := a.Index()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v %v", im, err)
	}
}

func TestOpenDetectsCorruptLayer(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	out := write(t, images, blobs)
	m, _ := images[0].Parsed()
	layer := blobs.data[m.Layers[0].Digest]
	at := bytes.Index(out, layer)
	if at < 0 {
		t.Fatal("layer not found in the tar")
	}
	out[at+len(layer)/2] ^= 1
	a := openBytes(t, out)
	ref, _ := name.ParseReference(images[0].Name)
	img, err := a.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, bundle.ErrDigestMismatch) {
		t.Fatalf("corrupt layer read: %v", err)
	}
}

// TestOpenReorderedCraneArchive: a crane tarball (metadata last) reordered
// to zstd gets the same frame layout as a ferry bundle, so Open reads an
// image's layers by decompressing about their size.
func TestOpenReorderedCraneArchive(t *testing.T) {
	img := verifytest.RandomImage(t, 300<<10, 3)
	tag, _ := name.NewTag("example.com/app:1")
	var tb bytes.Buffer
	if err := tarball.Write(tag, img, &tb); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cw, err := bundle.NewCompressor(&out, bundle.Zstd, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reorder.Reorder(context.Background(), cw, bytes.NewReader(tb.Bytes()), reorder.WithRank(bundle.HeaderRank)); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	a := openBytes(t, out.Bytes())
	if !a.Seekable() {
		t.Fatal("reordered zstd has no seek table")
	}
	opened := a.Inflated()
	got, err := a.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	read := int64(0)
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	spent := a.Inflated() - opened
	if spent > read+int64(len(layers))*1024 {
		t.Errorf("reading %d layer bytes inflated %d", read, spent)
	}
	if opened > 64<<10 {
		t.Errorf("opening inflated %d bytes", opened)
	}
	if a, b := digests(t, got), digests(t, img); !equalHashes(a[1:], b[1:]) {
		t.Errorf("Open sees %v, want %v", a, b)
	}
}
