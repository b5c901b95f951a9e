package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verifytest"
)

// fuzzSeeds are small archives of every kind Verify reads, plus a few
// broken ones. They live in testdata/fuzz; FERRY_WRITE_FUZZ_SEEDS=1
// regenerates them.
func fuzzSeeds() map[string][]byte {
	f := verifytest.NewFixture(21, 256)
	es := verifytest.Entries(f.Tar)
	blobs := verifytest.Blobs{}
	l := verifytest.GzipLayer(verifytest.TarLayer(22, 256))
	img := verifytest.Image("docker.io/rancher/tiny:1", "1", verifytest.Win1809, []verifytest.Layer{l}, blobs)
	link := verifytest.Entry{Hdr: tar.Header{Name: "blobs/link", Linkname: "sha256/x", Typeflag: tar.TypeSymlink}}
	return map[string][]byte{
		"bundle-tar":   f.Tar,
		"bundle-zstd":  verifytest.Zstd(f.Tar),
		"bundle-gzip":  verifytest.Gzip(f.Tar),
		"crane":        verifytest.CraneArchive(img, blobs),
		"docker-save":  verifytest.LegacyArchive(img, [][]byte{verifytest.TarLayer(22, 256)}),
		"symlink":      verifytest.Tar(append(es, link)),
		"truncated":    f.Tar[:len(f.Tar)/2],
		"metadataLast": verifytest.Tar(append(append([]verifytest.Entry(nil), es[4:]...), es[:4]...)),
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set FERRY_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	for _, target := range []string{"FuzzVerify", "FuzzReadContents"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range fuzzSeeds() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzVerify: no input may crash Verify or make it return an error (a
// bytes.Reader has no I/O errors), and an archive that verifies must
// describe at least one image, all of them good.
func FuzzVerify(f *testing.F) {
	for _, data := range fuzzSeeds() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := bundle.Verify(context.Background(), bytes.NewReader(data), bundle.WithJobs(2),
			bundle.WithExpectedImages([]string{"rancher/tiny:1"}, false),
			bundle.WithPlatformCheck("windows/amd64", func(v1.Platform) error { return nil }))
		if err != nil || rep == nil {
			t.Fatalf("Verify: %v", err)
		}
		if !rep.OK() {
			return
		}
		if len(rep.Images) == 0 {
			t.Fatalf("verified an archive with no images: %+v", rep)
		}
		for _, img := range rep.Images {
			if !img.OK {
				t.Fatalf("report OK but image %v is not", img.Names)
			}
		}
	})
}

// FuzzReadContents: no input may crash the metadata reader `ferry list`
// uses, nor what it offers on the contents.
func FuzzReadContents(f *testing.F) {
	for _, data := range fuzzSeeds() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := bundle.ReadContents(context.Background(), bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = c.Missing()
		for _, img := range c.Images() {
			if img.Layers < 0 || img.Missing > img.Layers {
				t.Fatalf("image %+v", img)
			}
		}
	})
}
