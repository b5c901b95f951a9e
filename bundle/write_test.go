package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// twoImages are verifytest.WindowsPair with their layers in blobs.
func twoImages(t testing.TB, blobs *memBlobs) []bundle.Image {
	return verifytest.WindowsPair(t, blobs.data)
}

func write(t testing.TB, images []bundle.Image, blobs bundle.Blobs, opts ...bundle.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteMetadataFirstAndEveryBlobOnce(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	entries := readEntries(t, write(t, images, blobs))
	want := []string{"oci-layout", "index.json", "manifest.json", "repositories", "blobs/", "blobs/sha256/"}
	for i, w := range want {
		if entries[i].name != w {
			t.Fatalf("entry %d is %s, want %s", i, entries[i].name, w)
		}
	}
	seen := map[string]bool{}
	layersStarted := false
	for _, e := range entries[len(want):] {
		if seen[e.name] {
			t.Fatalf("%s stored twice", e.name)
		}
		seen[e.name] = true
		sum := sha256.Sum256(e.data)
		if !strings.HasSuffix(e.name, "/"+hexOf(sum[:])) {
			t.Fatalf("%s holds bytes hashing to %x", e.name, sum)
		}
		isJSON := bytes.HasPrefix(e.data, []byte("{"))
		if layersStarted && isJSON {
			t.Fatalf("manifest or config %s after a layer", e.name)
		}
		layersStarted = layersStarted || !isJSON
	}
	// 2 manifests + 2 configs + 3 own layers + 1 shared base layer.
	if len(seen) != 8 {
		t.Fatalf("stored %d blobs, want 8", len(seen))
	}
	for h, n := range blobs.opened {
		if n != 1 {
			t.Errorf("blob %s opened %d times", h, n)
		}
	}
}

func TestWriteIndexAndDockerManifest(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	alias := images[1]
	alias.Name, alias.Tag = "docker.io/rancher/pause:latest", "latest"
	images = append(images, alias)
	entries := readEntries(t, write(t, images, blobs))
	var idx v1.IndexManifest
	if err := json.Unmarshal(entries[1].data, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 3 {
		t.Fatalf("index.json has %d entries, want one per name", len(idx.Manifests))
	}
	d := idx.Manifests[0]
	if d.Digest != images[0].Descriptor.Digest || d.Annotations[bundle.AnnotationContainerdName] != images[0].Name ||
		d.Annotations[bundle.AnnotationRefName] != "v1" || d.Platform.OSVersion != "10.0.17763.5458" {
		t.Fatalf("index entry %+v", d)
	}
	var dm []struct {
		Config       string
		RepoTags     []string
		Layers       []string
		LayerSources map[string]v1.Descriptor
	}
	if err := json.Unmarshal(entries[2].data, &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm) != 2 || len(dm[1].RepoTags) != 2 || len(dm[0].Layers) != 3 || len(dm[0].LayerSources) != 1 {
		t.Fatalf("manifest.json %+v", dm)
	}
	if !strings.HasPrefix(dm[0].Config, "blobs/sha256/") {
		t.Fatalf("config path %s", dm[0].Config)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	for _, c := range []bundle.Compression{bundle.None, bundle.Gzip, bundle.Zstd} {
		a := sha256.Sum256(write(t, images, blobs, bundle.WithCompression(c, 0)))
		b := sha256.Sum256(write(t, images, blobs, bundle.WithCompression(c, 0)))
		if a != b {
			t.Errorf("%s: two runs differ: %x vs %x", c, a, b)
		}
	}
}

func TestZstdFirstFrameHoldsAllMetadata(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	for _, level := range []int{0, 1, 19, 22} {
		out := write(t, images, blobs, bundle.WithCompression(bundle.Zstd, level))
		frames, windows := zstdFrames(t, out)
		if len(frames) < 2 {
			t.Fatalf("level %d: %d frames, want metadata + layers", level, len(frames))
		}
		for _, w := range windows {
			if w > bundle.MaxZstdWindow {
				t.Errorf("level %d: window %d over the 32 MiB that k3s accepts", level, w)
			}
		}
		dec, _ := zstd.NewReader(nil)
		head, err := dec.DecodeAll(frames[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		// The first frame alone, closed as a tar, is a complete listing.
		c, err := bundle.ReadContents(context.Background(), bytes.NewReader(append(head, make([]byte, 1024)...)))
		if err != nil {
			t.Fatalf("first frame alone: %v", err)
		}
		if !c.MetadataFirst || len(c.Missing()) != 0 || len(c.Images()) != 2 || c.Images()[0].Layers != 3 {
			t.Fatalf("first frame: metadataFirst=%v missing=%v images=%+v", c.MetadataFirst, c.Missing(), c.Images())
		}
		if len(head) > 16<<10 {
			t.Errorf("metadata frame is %d bytes decompressed", len(head))
		}
		if level >= 19 {
			continue // one long-window stream: no seek table to list by
		}
		a := openBytes(t, out)
		if got := len(a.Images()); got != 2 || a.Inflated() > int64(len(head))+512*16 {
			t.Errorf("listing the whole bundle found %d images and decompressed %d bytes (metadata is %d)", got, a.Inflated(), len(head))
		}
	}
}

// TestK3sLoaderPath reads a bundle the way k3s and rke2 do: ggcr's
// tarball.Image over a klauspost zstd reader capped at 32 MiB.
func TestK3sLoaderPath(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	path := filepath.Join(t.TempDir(), "b.tar.zst")
	if err := os.WriteFile(path, write(t, images, blobs, bundle.WithCompression(bundle.Zstd, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	var firstOpen *countingReadCloser
	opener := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		zr, err := zstd.NewReader(f, zstd.WithDecoderMaxMemory(1<<25))
		if err != nil {
			return nil, err
		}
		c := &countingReadCloser{r: zr, f: f}
		if firstOpen == nil {
			firstOpen = c
		}
		return c, nil
	}
	for _, img := range images {
		tag, err := name.NewTag(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := tarball.Image(opener, &tag)
		if err != nil {
			t.Fatalf("tarball.Image(%s): %v", tag, err)
		}
		if firstOpen.n > 64<<10 {
			t.Errorf("read %d decompressed bytes to find manifest.json", firstOpen.n)
		}
		t.Logf("%s: found manifest.json after %d decompressed bytes", tag, firstOpen.n)
		m, _ := img.Parsed()
		layers, err := loaded.Layers()
		if err != nil || len(layers) != len(m.Layers) {
			t.Fatalf("layers: %d, %v", len(layers), err)
		}
		for i, l := range layers {
			d, err := l.Digest()
			if err != nil || d != m.Layers[i].Digest {
				t.Fatalf("layer %d digest %s, want %s (%v)", i, d, m.Layers[i].Digest, err)
			}
			diff, err := l.DiffID()
			if err != nil {
				t.Fatal(err)
			}
			rc, _ := l.Uncompressed()
			got, _, _ := v1.SHA256(rc)
			if got != diff {
				t.Fatalf("layer %d diff_id %s, content %s", i, diff, got)
			}
		}
		if cfg, _ := loaded.RawConfigFile(); !bytes.Equal(cfg, img.Config) {
			t.Fatal("config bytes changed")
		}
		firstOpen = nil
	}
}

type countingReadCloser struct {
	r *zstd.Decoder
	f *os.File
	n int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
func (c *countingReadCloser) Close() error { c.r.Close(); return c.f.Close() }

func TestSkipForeignLayers(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	entries := readEntries(t, write(t, images, blobs, bundle.WithSkipForeignLayers(true)))
	m, _ := images[0].Parsed()
	foreign := bundle.BlobPath(m.Layers[2].Digest)
	for _, e := range entries {
		if e.name == foreign {
			t.Fatalf("foreign layer %s stored", foreign)
		}
	}
	c, err := bundle.ReadContents(context.Background(), bytes.NewReader(write(t, images, blobs, bundle.WithSkipForeignLayers(true))))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Images()) != 2 || c.Images()[0].Layers != 3 {
		t.Fatalf("descriptors must stay: %+v", c.Images())
	}
}

func TestWriteRejectsBadBlobs(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	cases := map[string]struct {
		corrupt func(v1.Hash, []byte) []byte
		want    error
	}{
		"flipped bit": {func(_ v1.Hash, b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }, bundle.ErrDigestMismatch},
		"short":       {func(_ v1.Hash, b []byte) []byte { return b[:len(b)-1] }, bundle.ErrSizeMismatch},
		"long":        {func(_ v1.Hash, b []byte) []byte { return append(bytes.Clone(b), 0) }, bundle.ErrSizeMismatch},
	}
	for name, tc := range cases {
		blobs.corrupt = tc.corrupt
		err := bundle.Write(context.Background(), io.Discard, images, blobs)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// A source that verifies digests itself still gets its sizes checked.
	blobs.corrupt = cases["short"].corrupt
	if err := bundle.Write(context.Background(), io.Discard, images, blobs, bundle.WithBlobsVerified(true)); !errors.Is(err, bundle.ErrSizeMismatch) {
		t.Errorf("short blob from a verifying source: %v", err)
	}
	blobs.corrupt = nil
	bad := images[0]
	bad.Config = append(bytes.Clone(bad.Config), ' ')
	if err := bundle.Write(context.Background(), io.Discard, []bundle.Image{bad}, blobs); !errors.Is(err, bundle.ErrDigestMismatch) {
		t.Errorf("config not matching its descriptor: %v", err)
	}
	if err := bundle.Write(context.Background(), io.Discard, nil, blobs); !errors.Is(err, bundle.ErrNoImages) {
		t.Errorf("no images: %v", err)
	}
}

func TestWriteFileAtomicLeavesNothingOnFailure(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.tar.zst")
	blobs.corrupt = func(_ v1.Hash, b []byte) []byte { return b[:10] }
	err := bundle.WriteFileAtomic(context.Background(), path, func(ctx context.Context, w io.Writer) error {
		return bundle.Write(ctx, w, images, blobs, bundle.WithCompression(bundle.Zstd, 0))
	})
	if err == nil {
		t.Fatal("write with a truncated blob succeeded")
	}
	assertEmptyDir(t, dir)

	// A cancelled context (SIGINT) also leaves nothing, and keeps an old file.
	blobs.corrupt = nil
	if err := os.WriteFile(path, []byte("previous bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = bundle.WriteFileAtomic(ctx, path, func(ctx context.Context, w io.Writer) error {
		return bundle.Write(ctx, w, images, blobs)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "previous bundle" {
		t.Fatal("previous file was touched")
	}
	if n := countFiles(t, dir); n != 1 {
		t.Fatalf("%d files in output dir, want just the previous bundle", n)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	if n := countFiles(t, dir); n != 0 {
		t.Fatalf("%d files left in %s", n, dir)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestWriteKeepsSourceIndex stores the list an image came from once, in the
// first zstd frame, named from index.json by annotation but not listed in it.
func TestWriteKeepsSourceIndex(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	alias := images[0]
	alias.Name, alias.Tag = "docker.io/rancher/rke2-runtime:latest", "latest"
	images = append(images, alias)
	list := verifytest.List(&images[0], &images[2])
	out := write(t, images, blobs, bundle.WithCompression(bundle.Zstd, 0))
	if !bytes.Equal(out, write(t, images, blobs, bundle.WithCompression(bundle.Zstd, 0))) {
		t.Fatal("two runs differ")
	}
	frames, _ := zstdFrames(t, out)
	dec, _ := zstd.NewReader(nil)
	head, err := dec.DecodeAll(frames[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, e := range readEntries(t, head) {
		if e.name == bundle.BlobPath(list.Descriptor.Digest) {
			stored++
			if !bytes.Equal(e.data, list.Manifest) {
				t.Fatal("stored list differs from the bytes served")
			}
		}
	}
	if stored != 1 {
		t.Fatalf("list stored %d times in the first frame, want once", stored)
	}
	c, err := bundle.ReadContents(context.Background(), bytes.NewReader(append(head, make([]byte, 1024)...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Index.Manifests) != 3 || len(c.Missing()) != 0 || !bytes.Equal(c.Small[bundle.BlobPath(list.Descriptor.Digest)], list.Manifest) {
		t.Fatalf("index.json lists %d manifests (want the 3 images only), missing %v", len(c.Index.Manifests), c.Missing())
	}
	for i, want := range []string{list.Descriptor.Digest.String(), "", list.Descriptor.Digest.String()} {
		a := c.Index.Manifests[i].Annotations
		if got := c.Images()[i].SourceIndex; got != want || a[bundle.AnnotationSourceDigest] != want {
			t.Errorf("image %d: sourceIndex %q, annotation %q, want %q", i, got, a[bundle.AnnotationSourceDigest], want)
		}
		wantMT := ""
		if want != "" {
			wantMT = string(list.Descriptor.MediaType)
		}
		if mt := a[bundle.AnnotationSourceMediaType]; mt != wantMT {
			t.Errorf("image %d: media type annotation %q, want %q", i, mt, wantMT)
		}
	}
}

func TestWriteRejectsBadSourceIndex(t *testing.T) {
	blobs := newMemBlobs()
	images := twoImages(t, blobs)
	verifytest.List(&images[0])
	wrong := *images[0].SourceIndex
	wrong.Manifest = append([]byte(" "), wrong.Manifest...)
	other := *verifytest.List(&images[1])
	for name, tc := range map[string]struct {
		src  bundle.RawIndex
		want string
	}{
		"bytes":      {wrong, "digest mismatch"},
		"not listed": {other, "does not list manifest"},
		"not a list": {bundle.RawIndex{Descriptor: images[1].Descriptor, Manifest: images[1].Manifest}, "is not an index"},
	} {
		img := images[0]
		img.SourceIndex = &tc.src
		var buf bytes.Buffer
		err := bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}
