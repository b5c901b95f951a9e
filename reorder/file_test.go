package reorder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testCodec is a minimal bundle.ReorderCodec over the fixtures' codecs.
type testCodec struct{ t testing.TB }

func (testCodec) Detect(br *bufio.Reader) (string, error) {
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip", nil
	}
	return None, nil
}

func (testCodec) FromPath(path string) (string, error) {
	for suffix, c := range map[string]string{".tar.zst": "zstd", ".tar.gz": "gzip", ".tar": None} {
		if strings.HasSuffix(path, suffix) {
			return c, nil
		}
	}
	return "", fmt.Errorf("unknown compression: %s", path)
}

func (testCodec) Decompress(r io.Reader) (io.ReadCloser, error) { return decompress(r) }

func (c testCodec) Compress(w io.Writer, name string) (Compressor, error) {
	if !slices.Contains(compressions, name) {
		return nil, fmt.Errorf("unknown compression %q", name)
	}
	return newFrameWriter(c.t, w, name), nil
}

func (testCodec) Reread(name string) bool { return name == "zstd" }

// fileTar decompresses a file and returns its tar stream and compression.
func fileTar(t *testing.T, path string) ([]byte, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := testCodec{}.Detect(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, raw), kind
}

func checkOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q (temp or spill files left behind?)", dir, got, want)
	}
}

// In place, File keeps the input's compression, detected from its content,
// and reads each kind of input its cheapest way: a plain file by offset, a
// zstd file twice, a gzip file through a spill beside it.
func TestFileInPlace(t *testing.T) {
	tarBytes := docker25(t, 50<<10)
	want := map[string]Strategy{"none": Indexed, "zstd": Reread, "gzip": Spill}
	for _, kind := range compressions {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "images.bundle")
			if err := os.WriteFile(path, compress(t, kind, tarBytes), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := File(context.Background(), path, "", testCodec{t}, WithRank(testRank))
			if err != nil {
				t.Fatal(err)
			}
			if res.Strategy != want[kind] || res.Compression != kind || res.WasOrdered {
				t.Fatalf("result %+v, want strategy %s, compression %s", res, want[kind], kind)
			}
			out, got := fileTar(t, path)
			if got != kind {
				t.Fatalf("compression %s, want the input's %s", got, kind)
			}
			checkSameEntries(t, readTar(t, tarBytes), readTar(t, out))
			if !IsOrdered(toEntries(readTar(t, out)), testRank) {
				t.Fatal("not reordered")
			}
			checkOnlyFiles(t, dir, "images.bundle")
		})
	}
}

func TestFileOutputCompression(t *testing.T) {
	tarBytes := docker25(t, 50<<10)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tar.gz")
	if err := os.WriteFile(in, compress(t, "gzip", tarBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		out, asked, want string
	}{
		{"out.tar.zst", "", "zstd"},   // from the name
		{"out.bin", "none", "none"},   // asked, the name implies nothing
		{"out.tar", "none", "none"},   // asked, the name agrees
		{"out.tar.gz", "", "gzip"},    // from the name, which is the input's
		{"out.tar.zst", "gzip", ""},   // contradicts the name
		{"out.bin", "", ""},           // nothing to go by
		{"out.tar.zst", "brotli", ""}, // unknown to the codec
	} {
		out := filepath.Join(t.TempDir(), c.out)
		res, err := File(context.Background(), in, out, testCodec{t}, WithRank(testRank), WithCompression(c.asked))
		if c.want == "" {
			if err == nil {
				t.Errorf("%s, asked %q: accepted", c.out, c.asked)
			}
			checkOnlyFiles(t, filepath.Dir(out))
			continue
		}
		if err != nil {
			t.Errorf("%s, asked %q: %v", c.out, c.asked, err)
			continue
		}
		if _, got := fileTar(t, out); got != c.want || res.Compression != c.want {
			t.Errorf("%s, asked %q: wrote %s (result says %s), want %s", c.out, c.asked, got, res.Compression, c.want)
		}
	}
}

func TestFileStdin(t *testing.T) {
	tarBytes := docker25(t, 50<<10)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.tar")
	res, err := File(context.Background(), "-", out, testCodec{t}, WithRank(testRank), WithStdin(bytes.NewReader(compress(t, "zstd", tarBytes))))
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != Spill {
		t.Fatalf("strategy %s: stdin cannot be reread", res.Strategy)
	}
	got, kind := fileTar(t, out)
	if kind != None {
		t.Fatalf("compression %s", kind)
	}
	checkSameEntries(t, readTar(t, tarBytes), readTar(t, got))
	checkOnlyFiles(t, dir, "out.tar")
	if _, err := File(context.Background(), "-", "", testCodec{t}, WithStdin(bytes.NewReader(nil))); err == nil {
		t.Fatal("stdin in place accepted")
	}
}

// On error the sentinel comes through, the input is as it was, and no temp
// or spill file is left.
func TestFileErrors(t *testing.T) {
	good := docker25(t, 50<<10)
	for _, kind := range compressions {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "in")
			bad := compress(t, kind, good)
			bad = bad[:len(bad)/2]
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := File(context.Background(), path, "", testCodec{t}, WithRank(testRank))
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrTruncated naming %s", err, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
				t.Fatal("input changed")
			}
			checkOnlyFiles(t, dir, "in")
		})
	}
	if _, err := File(context.Background(), filepath.Join(t.TempDir(), "missing"), "", testCodec{t}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing input: %v", err)
	}
	if _, err := File(context.Background(), "in", "out", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("nil codec: %v", err)
	}
}

// WithProgress sees exactly the bytes that end up in the output file.
func TestFileProgress(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tar")
	if err := os.WriteFile(in, docker25(t, 50<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar")
	var seen bytes.Buffer
	if _, err := File(context.Background(), in, out, testCodec{t}, WithRank(testRank), WithProgress(&seen)); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen.Bytes(), written) {
		t.Fatalf("progress saw %d bytes, the file holds %d", seen.Len(), len(written))
	}
}
