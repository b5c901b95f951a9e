package reorder

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// writeLegacyArchive streams a docker-save-like archive of layers random
// layers, each size bytes, to path, metadata last. Layer data is
// incompressible, or with compressible set about 2:1 like the uncompressed
// layer tars docker save writes. Nothing layer-sized is held in memory.
func writeLegacyArchive(t testing.TB, path string, layers int, size int64, compressible bool) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cw := &countWriter{w: f}
	tw := tar.NewWriter(cw)
	var rng io.Reader = rand.NewChaCha8([32]byte{42})
	if compressible {
		rng = nibbles{rng}
	}
	var manifest []string
	for i := range layers {
		id := digestOf([]byte(fmt.Sprint("layer", i)))
		for _, fl := range []file{dir(id + "/"), reg(id+"/VERSION", []byte("1.0")), reg(id+"/json", mustJSON(map[string]string{"id": id}))} {
			writeFile(t, tw, fl)
		}
		h := tar.Header{Name: id + "/layer.tar", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, rng, size); err != nil {
			t.Fatal(err)
		}
		manifest = append(manifest, id+"/layer.tar")
	}
	cfg := mustJSON(map[string]string{"os": "linux"})
	writeFile(t, tw, reg(digestOf(cfg)+".json", cfg))
	writeFile(t, tw, reg("manifest.json", mustJSON([]map[string]any{{"Config": digestOf(cfg) + ".json", "Layers": manifest}})))
	writeFile(t, tw, reg("repositories", []byte(`{}`)))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return cw.n
}

// nibbles keeps 4 random bits per byte: Huffman coding halves it, but it
// has no long matches for zstd or deflate to exploit.
type nibbles struct{ r io.Reader }

func (n nibbles) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	for i := range p[:k] {
		p[i] = 'a' + p[i]&15
	}
	return k, err
}

func writeFile(t testing.TB, tw *tar.Writer, f file) {
	t.Helper()
	if err := tw.WriteHeader(&f.hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(f.body); err != nil {
		t.Fatal(err)
	}
}

// compressFile writes a zstd copy of src, streaming.
func compressFile(t testing.TB, src, dst, kind string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fw := newFrameWriter(t, out, kind)
	if _, err := io.Copy(fw, in); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

// allocated reports the bytes allocated (not retained: TotalAlloc counts
// every allocation, so it does not depend on when the GC runs) while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Reordering 96 MiB must not allocate anything like 96 MiB, whichever way
// the input is read: the budget covers the copy buffer, the zstd decoder's
// window and the index, not the layers.
func TestReorderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~200 MB of temporary files")
	}
	dirPath := t.TempDir()
	plain := filepath.Join(dirPath, "in.tar")
	size := writeLegacyArchive(t, plain, 6, 16<<20, false)
	zst := filepath.Join(dirPath, "in.tar.zst")
	compressFile(t, plain, zst, "zstd")

	const budget = 16 << 20
	for _, st := range []Strategy{Indexed, Reread, Spill} {
		t.Run(string(st), func(t *testing.T) {
			var res *Result
			var err error
			got := allocated(func() {
				res, err = reorderFile(plain, zst, st, dirPath, io.Discard)
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Bytes != size {
				t.Fatalf("wrote %d bytes, input %d", res.Bytes, size)
			}
			t.Logf("%s: %d MiB archive, %.1f MiB allocated", st, size>>20, float64(got)/(1<<20))
			if got > budget {
				t.Fatalf("allocated %d bytes reordering a %d-byte archive; budget %d", got, size, budget)
			}
		})
	}
}

// reorderFile reorders the plain file with Indexed, else the compressed file
// as a stream, the way ferry's command does.
func reorderFile(plain, compressed string, st Strategy, spillDir string, dst io.Writer) (*Result, error) {
	opts := []Option{WithRank(testRank), WithSpillDir(spillDir)}
	if st == Indexed {
		f, err := os.Open(plain)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return Reorder(context.Background(), dst, f, opts...)
	}
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(compressed)
		if err != nil {
			return nil, err
		}
		rc, err := decompress(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return closeBoth{rc, f}, nil
	}
	if st == Reread {
		opts = append(opts, WithReopen(open))
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return Reorder(context.Background(), dst, rc, opts...)
}

type closeBoth struct {
	io.ReadCloser
	f *os.File
}

func (c closeBoth) Close() error {
	c.ReadCloser.Close()
	return c.f.Close()
}
