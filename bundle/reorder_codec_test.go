package bundle_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder"
)

// reorder.File treats the name reorder.None as a plain tar, and must be
// handed Compression's names unchanged.
func TestReorderCodec(t *testing.T) {
	if string(bundle.None) != reorder.None {
		t.Fatalf("bundle.None %q, reorder.None %q", bundle.None, reorder.None)
	}
	codec := bundle.ReorderCodec{}
	for _, c := range []bundle.Compression{bundle.None, bundle.Gzip, bundle.Zstd} {
		var buf bytes.Buffer
		w, err := codec.Compress(&buf, string(c))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := codec.Detect(bufio.NewReader(bytes.NewReader(buf.Bytes())))
		if err != nil || got != string(c) {
			t.Errorf("%s: detected %q, %v", c, got, err)
		}
		if codec.Reread(string(c)) != (c == bundle.Zstd) {
			t.Errorf("%s: reread %v", c, codec.Reread(string(c)))
		}
	}
	if c, err := codec.FromPath("x.tgz"); err != nil || c != string(bundle.Gzip) {
		t.Errorf("FromPath: %q %v", c, err)
	}
	if _, err := codec.Compress(&bytes.Buffer{}, "lz4"); err == nil {
		t.Error("unknown compression accepted")
	}
}

// ExampleReorderCodec makes a manifest-last archive metadata-first, in
// place, keeping its compression, as `ferry reorder` does.
func ExampleReorderCodec() {
	path := filepath.Join(os.TempDir(), "ferry-example-reorder.tar.gz")
	defer os.Remove(path)
	if err := writeManifestLast(path); err != nil {
		log.Fatal(err)
	}
	res, err := reorder.File(context.Background(), path, "", bundle.ReorderCodec{},
		reorder.WithRank(bundle.HeaderRank))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Entries, "entries,", res.Metadata, "metadata first, still", res.Compression)
	// Output: 2 entries, 1 metadata first, still gzip
}

// writeManifestLast writes a gzip tar with a layer, then manifest.json.
func writeManifestLast(path string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{{"0123/layer.tar", string(make([]byte, 4096))}, {"manifest.json", "[]"}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	c, err := bundle.NewCompressor(f, bundle.Gzip, 0)
	if err == nil {
		_, err = c.Write(buf.Bytes())
	}
	if err == nil {
		err = c.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
