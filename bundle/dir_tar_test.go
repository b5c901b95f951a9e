package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory reads as a well-formed tar of its regular files, with the
// same bytes whatever the offsets and sizes of the reads.
func TestDirTarReadsAsTar(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"oci-layout":         []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"blobs/sha256/aa":    bytes.Repeat([]byte("a"), 512),
		"blobs/sha256/bb":    bytes.Repeat([]byte("b"), 1000),
		"blobs/sha256/empty": nil,
		"blobs/sha256/" + strings.Repeat("c", 120): []byte("a name over 100 bytes"),
	}
	for n, data := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dt, err := newDirTar(dir)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(io.NewSectionReader(dt, 0, dt.size))
	if err != nil || int64(len(whole)) != dt.size || dt.size%512 != 0 {
		t.Fatalf("read %d of %d bytes: %v", len(whole), dt.size, err)
	}
	tr := tar.NewReader(bytes.NewReader(whole))
	seen := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		if want, ok := files[h.Name]; !ok || !bytes.Equal(got, want) {
			t.Fatalf("%s: %q", h.Name, got)
		}
		seen++
	}
	if seen != len(files) {
		t.Fatalf("%d entries, want %d", seen, len(files))
	}
	for _, step := range []int{1, 7, 511, 513, 4096} {
		for off := 0; off < len(whole); off += step {
			buf := make([]byte, min(step*2, len(whole)-off))
			if n, err := dt.ReadAt(buf, int64(off)); n != len(buf) || err != nil || !bytes.Equal(buf, whole[off:off+n]) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(buf), off, n, err)
			}
		}
	}
	if n, err := dt.ReadAt(make([]byte, 10), dt.size-5); n != 5 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the end: %d, %v", n, err)
	}
}
