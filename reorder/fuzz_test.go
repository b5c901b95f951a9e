package reorder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite testdata/fuzz/FuzzReorder from fuzzSeeds")

// fuzzSeeds are small archives in each layout plus near-misses, so the
// fuzzer starts from structures it would take long to invent: PAX and GNU
// long-name headers, links, directories, metadata in the wrong place.
func fuzzSeeds(t testing.TB) map[string][]byte {
	legacy := dockerLegacy(t, 600)
	d25 := docker25(t, 700)
	return map[string][]byte{
		"docker-legacy":  legacy,
		"docker-25":      d25,
		"oci-archive":    ociArchive(t, 64),
		"ordered":        buildTar(t, reg("oci-layout", []byte(`{}`)), reg("index.json", []byte(`{"m":[]}`)), reg("l", []byte("layer"))),
		"hardlink":       buildTar(t, reg("a.json", []byte(`{"a":1}`)), hardlink("b.json", "a.json"), reg("manifest.json", []byte(`[]`))),
		"no-trailer":     legacy[:len(legacy)-2*blockSize],
		"truncated":      d25[:len(d25)/2],
		"unsafe":         buildTar(t, reg("../x", []byte("{}"))),
		"duplicate":      buildTar(t, reg("manifest.json", []byte("[]")), reg("manifest.json", []byte("[]"))),
		"symlink-escape": buildTar(t, symlink("a", "../b")),
		"pax-sparse":     paxSparse(t),
		"empty-archive":  make([]byte, 2*blockSize),
	}
}

func hardlink(name, target string) file {
	return file{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}

var sentinels = []error{ErrTruncated, ErrMalformed, ErrUnsafePath, ErrUnsafeLink, ErrDuplicate, ErrUnsupportedType, ErrLimit}

// FuzzReorder checks, for any input: no panic; the three strategies agree;
// every error is one of the sentinels; and a success is a tar holding the
// input's entries unchanged, metadata first, that reorders to itself.
func FuzzReorder(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		outs := map[Strategy][]byte{}
		var errs []error
		for _, st := range []Strategy{Indexed, Reread, Spill} {
			out, err := fuzzOnce(data, st)
			if err != nil && !isSentinel(err) {
				t.Fatalf("%s: error without a sentinel: %v", st, err)
			}
			outs[st] = out
			errs = append(errs, err)
		}
		if (errs[0] == nil) != (errs[1] == nil) || (errs[0] == nil) != (errs[2] == nil) {
			t.Fatalf("strategies disagree: indexed %v, reread %v, spill %v", errs[0], errs[1], errs[2])
		}
		if errs[0] != nil {
			return
		}
		if !bytes.Equal(outs[Indexed], outs[Reread]) || !bytes.Equal(outs[Indexed], outs[Spill]) {
			t.Fatalf("strategies wrote different bytes")
		}
		checkFuzzOutput(t, data, outs[Indexed])
	})
}

func fuzzOnce(data []byte, st Strategy) ([]byte, error) {
	var out bytes.Buffer
	opts := []Option{WithRank(testRank), WithMaxEntries(1000)}
	var src io.Reader = bytes.NewReader(data)
	switch st {
	case Reread:
		src = onlyReader{bytes.NewReader(data)}
		opts = append(opts, WithReopen(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }))
	case Spill:
		src = onlyReader{bytes.NewReader(data)}
	}
	_, err := Reorder(context.Background(), &out, src, opts...)
	return out.Bytes(), err
}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func checkFuzzOutput(t *testing.T, data, out []byte) {
	in, err := parseTar(data)
	if err != nil {
		t.Fatalf("Reorder accepted what archive/tar rejects: %v", err)
	}
	got := readTar(t, out)
	if len(got) != len(in) {
		t.Fatalf("%d entries in, %d out", len(in), len(got))
	}
	byName := map[string]entry{}
	for _, e := range in {
		byName[e.hdr.Name] = e
	}
	for _, e := range got {
		orig, ok := byName[e.hdr.Name]
		if !ok || !reflect.DeepEqual(orig.hdr, e.hdr) || !bytes.Equal(orig.body, e.body) {
			t.Fatalf("entry %q changed", e.hdr.Name)
		}
	}
	if !IsOrdered(toEntries(got), testRank) {
		t.Fatalf("output not ordered")
	}
	again, err := fuzzOnce(out, Indexed)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("reordering the output changed it (err %v)", err)
	}
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpus with
// `go test ./reorder -run TestWriteFuzzCorpus -write-corpus`; otherwise it
// checks that the corpus is there.
func TestWriteFuzzCorpus(t *testing.T) {
	root := filepath.Join("testdata", "fuzz", "FuzzReorder")
	if !*writeCorpus {
		entries, err := os.ReadDir(root)
		if err != nil || len(entries) == 0 {
			t.Fatalf("seed corpus missing in %s (%v): run with -write-corpus", root, err)
		}
		return
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
