package bundle_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rancher/ferry/bundle"
)

// TestK3sLoaderOnBundles loads real bundle files, named in
// FERRY_E2E_BUNDLES by scripts/e2e-bundle.sh, the way k3s and rke2 do:
// go-containerregistry's tarball.Image over ferry's decompressor, whose zstd
// reader has the same 32 MiB window cap as theirs.
func TestK3sLoaderOnBundles(t *testing.T) {
	paths := strings.Fields(os.Getenv("FERRY_E2E_BUNDLES"))
	if len(paths) == 0 {
		t.Skip("FERRY_E2E_BUNDLES not set; scripts/e2e-bundle.sh runs this on real bundles")
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) { loadLikeK3s(t, path) })
	}
}

func loadLikeK3s(t *testing.T, path string) {
	var firstRead int64 = -1
	opener := func() (io.ReadCloser, error) {
		rc, _, err := bundle.DecompressFile(path)
		if err != nil {
			return nil, err
		}
		c := &countingCloser{ReadCloser: rc}
		if firstRead < 0 {
			c.report = &firstRead
		}
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := bundle.ReadContents(context.Background(), f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, dm := range contents.Docker {
		for _, repoTag := range dm.RepoTags {
			tag, err := name.NewTag(repoTag)
			if err != nil {
				t.Fatalf("RepoTag %q: %v", repoTag, err)
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				t.Fatalf("tarball.Image(%s): %v", tag, err)
			}
			checkLoadedImage(t, img, dm, contents)
			checkOpenAgrees(t, path, tag, img, contents)
			loaded++
		}
	}
	if loaded == 0 {
		t.Fatal("no tagged image loaded")
	}
	t.Logf("%s: %d images loaded; manifest.json found after %d decompressed bytes", path, loaded, firstRead)
	if firstRead > 1<<20 {
		t.Errorf("k3s would decompress %d bytes to find manifest.json", firstRead)
	}
}

func checkLoadedImage(t *testing.T, img v1.Image, dm bundle.DockerManifest, c *bundle.Contents) {
	t.Helper()
	// Config paths differ by tool (blobs/sha256/<hex>, sha256:<hex>,
	// <hex>.json); all of them carry the config's digest.
	cfg, err := img.ConfigName()
	if err != nil || !strings.Contains(dm.Config, cfg.Hex) {
		t.Fatalf("config %s (%v), manifest.json says %s", cfg, err, dm.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != len(dm.Layers) {
		t.Fatalf("%d layers (%v), manifest.json lists %d", len(layers), err, len(dm.Layers))
	}
	for i, l := range layers {
		diff, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if _, stored := c.Sizes[dm.Layers[i]]; !stored && c.Complete {
			continue
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != diff {
			t.Fatalf("layer %d: content hashes to %s (%v), diff_id %s", i, got, err, diff)
		}
	}
}

type countingCloser struct {
	io.ReadCloser
	n      int64
	report *int64
}

func (c *countingCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingCloser) Close() error {
	if c.report != nil {
		*c.report = c.n
	}
	return c.ReadCloser.Close()
}

// checkOpenAgrees reads the same image through bundle.Open and requires the
// config and layer digests go-containerregistry's reader saw, the manifest
// digest index.json records (the registry's), and every stored layer to
// read back to its digest.
func checkOpenAgrees(t *testing.T, path string, tag name.Tag, tb v1.Image, c *bundle.Contents) {
	t.Helper()
	a, err := bundle.OpenPath(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, err := a.Image(tag)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, want := digests(t, img), digests(t, tb)
	if !equalHashes(got[1:], want[1:]) {
		t.Fatalf("%s: Open sees config+layers %v, tarball.Image %v", tag, got[1:], want[1:])
	}
	if c.Index != nil {
		for _, d := range c.Index.Manifests {
			if d.Annotations[bundle.AnnotationContainerdName] == tag.String() && d.Digest != got[0] {
				t.Fatalf("%s: Open's manifest is %s, index.json says %s", tag, got[0], d.Digest)
			}
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if _, stored := c.Sizes[bundle.BlobPath(d)]; !stored {
			continue // a foreign layer left out
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s layer %s through Open: %v", tag, d, err)
		}
	}
}
