package reorder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// onlyReader hides Seek and ReadAt, so Reorder must treat the input as a pipe.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// strategiesFor lists the strategies that apply to an input compression: a
// compressed stream can't be read by offset.
func strategiesFor(kind string) []Strategy {
	if kind == "none" {
		return []Strategy{Indexed, Reread, Spill}
	}
	return []Strategy{Reread, Spill}
}

type run struct {
	out        []byte // as written, compressed
	firstFrame int64  // where EndFrame was called, -1 if never
	res        *Result
}

// reorderWith runs Reorder over input (raw file bytes, possibly compressed)
// using strategy st, writing compression outKind.
func reorderWith(t testing.TB, input []byte, st Strategy, outKind string, extra ...Option) (run, error) {
	t.Helper()
	var buf bytes.Buffer
	fw := newFrameWriter(t, &buf, outKind)
	opts := append([]Option{WithRank(testRank), WithSpillDir(t.TempDir())}, extra...)
	var src io.Reader = bytes.NewReader(input)
	if st != Indexed {
		rc, err := decompress(onlyReader{bytes.NewReader(input)})
		if err != nil {
			return run{}, err
		}
		defer rc.Close()
		src = onlyReader{rc}
	}
	if st == Reread {
		opts = append(opts, WithReopen(func() (io.ReadCloser, error) {
			return decompress(bytes.NewReader(input))
		}))
	}
	res, err := Reorder(context.Background(), fw, src, opts...)
	if cerr := fw.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil && res.Strategy != st {
		t.Fatalf("strategy = %s, want %s", res.Strategy, st)
	}
	return run{out: buf.Bytes(), firstFrame: fw.firstFrame, res: res}, err
}

func decodeAll(t testing.TB, b []byte) []byte {
	t.Helper()
	rc, err := decompress(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("decompressing output: %v", err)
	}
	return out
}

// expectedOrder is the stable sort of the input names by clamped rank.
func expectedOrder(in []entry) (names []string, meta int) {
	sorted := slices.Clone(in)
	slices.SortStableFunc(sorted, func(a, b entry) int {
		return min(testRank(&a.hdr, head(a.body)), Bulk) - min(testRank(&b.hdr, head(b.body)), Bulk)
	})
	for _, e := range sorted {
		names = append(names, e.hdr.Name)
		if testRank(&e.hdr, head(e.body)) < Bulk {
			meta++
		}
	}
	return names, meta
}

func head(b []byte) []byte { return b[:min(len(b), HeadSize)] }

func names(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.hdr.Name)
	}
	return out
}

func toEntries(es []entry) []Entry {
	out := make([]Entry, len(es))
	for i := range es {
		out[i] = Entry{Header: &es[i].hdr, Head: head(es[i].body)}
	}
	return out
}

// checkSameEntries asserts that out holds exactly in's entries, headers and
// bodies unchanged, in the expected order.
func checkSameEntries(t *testing.T, in, out []entry) {
	t.Helper()
	want, _ := expectedOrder(in)
	if got := names(out); !slices.Equal(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
	byName := map[string]entry{}
	for _, e := range in {
		byName[e.hdr.Name] = e
	}
	for _, e := range out {
		orig := byName[e.hdr.Name]
		if !reflect.DeepEqual(orig.hdr, e.hdr) {
			t.Errorf("header of %q changed:\n got %+v\nwant %+v", e.hdr.Name, e.hdr, orig.hdr)
		}
		if !bytes.Equal(orig.body, e.body) {
			t.Errorf("content of %q changed", e.hdr.Name)
		}
	}
	if !IsOrdered(toEntries(out), testRank) {
		t.Errorf("IsOrdered(output) = false")
	}
}

// checkFirstFrame decodes only the bytes up to the frame end: they must be a
// tar prefix holding exactly the metadata entries.
func checkFirstFrame(t *testing.T, r run, kind string, metaNames []string) {
	t.Helper()
	if kind == "none" {
		return // nothing to decode; EndFrame is a no-op for plain tar
	}
	if r.res.Metadata == 0 || r.res.Metadata == r.res.Entries {
		if r.firstFrame >= 0 {
			t.Fatalf("EndFrame called with nothing to separate")
		}
		return
	}
	if r.firstFrame <= 0 || r.firstFrame >= int64(len(r.out)) {
		t.Fatalf("first frame ends at %d of %d bytes", r.firstFrame, len(r.out))
	}
	first := decodeAll(t, r.out[:r.firstFrame])
	if kind == "gzip" {
		// Independent check: a gzip reader told to stop after one member.
		gr, err := gzip.NewReader(bytes.NewReader(r.out))
		if err != nil {
			t.Fatal(err)
		}
		gr.Multistream(false)
		member, err := io.ReadAll(gr)
		if err != nil || !bytes.Equal(member, first) {
			t.Fatalf("first gzip member differs from the bytes before EndFrame (err %v)", err)
		}
	}
	es, err := parseTar(first)
	if err != nil {
		t.Fatalf("first frame alone is not a tar prefix: %v", err)
	}
	if got := names(es); !slices.Equal(got, metaNames) {
		t.Fatalf("first frame holds %q, want the metadata %q", got, metaNames)
	}
	if int64(len(first)) != r.res.MetadataBytes {
		t.Fatalf("first frame decodes to %d bytes, metadata is %d", len(first), r.res.MetadataBytes)
	}
}

func TestReorderLayouts(t *testing.T) {
	for fixture, tarBytes := range fixtures(t) {
		in := readTar(t, tarBytes)
		want, meta := expectedOrder(in)
		for _, inKind := range compressions {
			input := compress(t, inKind, tarBytes)
			for _, outKind := range compressions {
				outputs := map[Strategy][]byte{}
				for _, st := range strategiesFor(inKind) {
					t.Run(fmt.Sprintf("%s/%s-to-%s/%s", fixture, inKind, outKind, st), func(t *testing.T) {
						r, err := reorderWith(t, input, st, outKind)
						if err != nil {
							t.Fatal(err)
						}
						outTar := decodeAll(t, r.out)
						if len(outTar) != len(tarBytes) || r.res.Bytes != int64(len(tarBytes)) {
							t.Errorf("output tar is %d bytes (result %d), input %d", len(outTar), r.res.Bytes, len(tarBytes))
						}
						checkSameEntries(t, in, readTar(t, outTar))
						if r.res.Entries != len(in) || r.res.Metadata != meta {
							t.Errorf("result %+v, want %d entries, %d metadata", r.res, len(in), meta)
						}
						checkFirstFrame(t, r, outKind, want[:meta])

						again, err := reorderWith(t, r.out, st2(st, outKind), outKind)
						if err != nil {
							t.Fatalf("second pass: %v", err)
						}
						if !bytes.Equal(again.out, r.out) {
							t.Fatalf("second pass changed the bytes (%d -> %d)", len(r.out), len(again.out))
						}
						if !again.res.WasOrdered {
							t.Errorf("second pass: WasOrdered = false")
						}
						outputs[st] = r.out
					})
				}
				for st, out := range outputs {
					if !bytes.Equal(out, outputs[Spill]) {
						t.Errorf("%s/%s-to-%s: %s and spill outputs differ", fixture, inKind, outKind, st)
					}
				}
			}
		}
	}
}

// st2 picks a strategy for rereading an output of compression kind.
func st2(st Strategy, kind string) Strategy {
	if kind != "none" && st == Indexed {
		return Spill
	}
	return st
}

// ggcr's own loader must accept the reordered tarball and find the same
// images, with every layer's bytes matching its digest.
func TestReorderGGCRLoadable(t *testing.T) {
	imgs, tarBytes := ggcrImages(t, 200<<10)
	r, err := reorderWith(t, compress(t, "zstd", tarBytes), Spill, "none")
	if err != nil {
		t.Fatal(err)
	}
	if first := readTar(t, r.out)[0].hdr.Name; first != "manifest.json" {
		t.Fatalf("first entry %q, want manifest.json", first)
	}
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.out)), nil }
	for ref, want := range imgs {
		tag, err := name.NewTag(ref.String())
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.Image(opener, &tag)
		if err != nil {
			t.Fatalf("loading %s: %v", ref, err)
		}
		gotD, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		wantD, _ := want.Digest()
		if gotD != wantD {
			t.Fatalf("%s: digest %s, want %s", ref, gotD, wantD)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			checkLayer(t, l.Compressed, l.Digest)
		}
	}
}

func checkLayer(t *testing.T, open func() (io.ReadCloser, error), digest func() (v1.Hash, error)) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := digest()
	if err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + digestOf(b); got != d.String() {
		t.Fatalf("layer bytes hash to %s, want %s", got, d)
	}
}

// A plain tar file is reordered by offset, from wherever its reader stands.
func TestReorderFileFromOffset(t *testing.T) {
	tarBytes := dockerLegacy(t, 64<<10)
	f, err := os.CreateTemp(t.TempDir(), "in-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefix := []byte("junk before the archive")
	if _, err := f.Write(append(prefix, tarBytes...)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(int64(len(prefix)), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Reorder(context.Background(), &out, f, WithRank(testRank))
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != Indexed {
		t.Fatalf("strategy %s, want indexed", res.Strategy)
	}
	checkSameEntries(t, readTar(t, tarBytes), readTar(t, out.Bytes()))
}

// Without a RankFunc nothing moves: the output is the input.
func TestReorderDefaultRankKeepsOrder(t *testing.T) {
	tarBytes := docker25(t, 10<<10)
	var out bytes.Buffer
	res, err := Reorder(context.Background(), &out, bytes.NewReader(tarBytes))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), tarBytes) || !res.WasOrdered || res.Metadata != 0 {
		t.Fatalf("default rank changed the archive (ordered=%v, metadata=%d)", res.WasOrdered, res.Metadata)
	}
}

// GNU tar pads archives to 10 KiB; the output ends with the standard two
// zero blocks, and the entries are untouched.
func TestReorderNormalisesTrailer(t *testing.T) {
	tarBytes := docker25(t, 10<<10)
	padded := append(slices.Clone(tarBytes), make([]byte, 10240-len(tarBytes)%10240)...)
	var out bytes.Buffer
	if _, err := Reorder(context.Background(), &out, bytes.NewReader(padded), WithRank(testRank)); err != nil {
		t.Fatal(err)
	}
	if out.Len() != len(tarBytes) {
		t.Fatalf("output %d bytes, want %d", out.Len(), len(tarBytes))
	}
}

func TestIsOrdered(t *testing.T) {
	es := func(hs ...tar.Header) []Entry {
		out := make([]Entry, len(hs))
		for i := range hs {
			out[i] = Entry{Header: &hs[i]}
		}
		return out
	}
	layer := tar.Header{Name: "l.tar", Typeflag: tar.TypeReg, Size: 10 << 20}
	man := tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Size: 10}
	link := tar.Header{Name: "manifest-link.json", Typeflag: tar.TypeLink, Linkname: "l.tar"}
	metaLink := func(h *tar.Header, head []byte) int {
		if h.Name == "manifest-link.json" {
			return 2
		}
		return testRank(h, head)
	}
	tests := []struct {
		name    string
		entries []Entry
		rank    RankFunc
		want    bool
	}{
		{"empty", nil, testRank, true},
		{"metadata first", es(man, layer), testRank, true},
		{"layer first", es(layer, man), testRank, false},
		{"bulk ranks are equal", es(layer, tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: 1 << 30}), func(h *tar.Header, _ []byte) int {
			if h.Name == "x" {
				return Bulk
			}
			return Bulk + 5
		}, true},
		// A hard link ranks no earlier than its target, or it would move ahead of it.
		{"link after its bulk target", es(man, layer, link), metaLink, true},
	}
	for _, tt := range tests {
		if got := IsOrdered(tt.entries, tt.rank); got != tt.want {
			t.Errorf("%s: IsOrdered = %v, want %v", tt.name, got, tt.want)
		}
	}
}
