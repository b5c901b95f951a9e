package reorder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/rancher/ferry/reorder/tarscan"
)

// patchType rewrites the typeflag of the header block at off and fixes its
// checksum, to build entries archive/tar refuses to write.
func patchType(b []byte, off int, typ byte) []byte {
	b = bytes.Clone(b)
	blk := b[off : off+blockSize]
	blk[156] = typ
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func gnu(f file) file {
	f.hdr.Format = tar.FormatGNU
	return f
}

// paxRecord formats one "len key=value\n" PAX record.
func paxRecord(k, v string) string {
	s := " " + k + "=" + v + "\n"
	n := len(s) + len(strconv.Itoa(len(s)))
	n = len(s) + len(strconv.Itoa(n))
	return strconv.Itoa(n) + s
}

// paxSparse is a PAX 1.0 sparse file: tar.Reader reads its map from the
// data section, so its bytes do not sit where a plain entry's would.
func paxSparse(t testing.TB) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "sparse") + paxRecord("GNU.sparse.realsize", "1024")
	x := buildTar(t, reg("PaxHeaders/sparse", []byte(recs)))
	x = patchType(x[:len(x)-2*blockSize], 0, tar.TypeXHeader)
	data := make([]byte, 1024)
	copy(data, "1\n0\n512\n")
	return append(x, buildTar(t, reg("GNUSparseFile.0/sparse", data))...)
}

func TestReorderRejectsMalformed(t *testing.T) {
	good := docker25(t, 3000)
	layer := reg("layer.tar", randomBytes(5, 5000))
	meta := reg("manifest.json", []byte(`[]`))
	hdr := func(h tar.Header) file { return file{hdr: h} }
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty", nil, ErrTruncated},
		{"only a trailer's first half", make([]byte, 300), ErrTruncated},
		{"cut inside data", good[:len(good)/2+7], ErrTruncated},
		{"cut inside a header", good[:blockSize*2+100], ErrTruncated},
		{"no end-of-archive marker", good[:len(good)-2*blockSize], ErrTruncated},
		{"cut before the last padding", buildTar(t, layer)[:blockSize+5000], ErrTruncated},
		{"garbage", randomBytes(7, 4096), ErrMalformed},
		{"bad checksum", func() []byte { b := bytes.Clone(good); b[148] ^= 1; return b }(), ErrMalformed},
		{"parent path", buildTar(t, meta, reg("../evil", []byte("x"))), ErrUnsafePath},
		{"nested parent path", buildTar(t, reg("a/../../evil", []byte("x"))), ErrUnsafePath},
		{"absolute path", buildTar(t, reg("/etc/passwd", []byte("x"))), ErrUnsafePath},
		{"backslash parent", buildTar(t, reg(`a\..\..\evil`, []byte("x"))), ErrUnsafePath},
		{"drive letter", buildTar(t, reg(`C:\evil`, []byte("x"))), ErrUnsafePath},
		{"root as a file", buildTar(t, reg(".", nil)), ErrUnsafePath},
		{"name over 1024 bytes", buildTar(t, reg(strings.Repeat("n/", 512)+"x", []byte("x"))), ErrUnsafePath},
		{"duplicate", buildTar(t, meta, layer, reg("manifest.json", []byte(`{}`))), ErrDuplicate},
		{"duplicate after cleaning", buildTar(t, layer, reg("./layer.tar", nil)), ErrDuplicate},
		{"file and dir of one name", buildTar(t, dir("blobs/"), reg("blobs", nil)), ErrDuplicate},
		{"char device", buildTar(t, hdr(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})), ErrUnsupportedType},
		{"block device", buildTar(t, hdr(tar.Header{Name: "sda", Typeflag: tar.TypeBlock})), ErrUnsupportedType},
		{"fifo", buildTar(t, hdr(tar.Header{Name: "pipe", Typeflag: tar.TypeFifo})), ErrUnsupportedType},
		{"global PAX header", buildTar(t, hdr(tar.Header{Name: "g", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}), layer), ErrUnsupportedType},
		{"GNU sparse file", patchType(buildTar(t, gnu(layer)), 0, tar.TypeGNUSparse), ErrUnsupportedType},
		{"PAX sparse file", paxSparse(t), ErrUnsupportedType},
		{"contiguous file", patchType(buildTar(t, layer), 0, tar.TypeCont), ErrUnsupportedType},
		{"symlink escapes", buildTar(t, symlink("a/link", "../../etc/passwd")), ErrUnsafeLink},
		{"symlink absolute", buildTar(t, symlink("link", "/etc/passwd")), ErrUnsafeLink},
		{"symlink empty", buildTar(t, symlink("link", "")), ErrUnsafeLink},
		{"hard link to nothing", buildTar(t, hdr(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "missing"})), ErrUnsafeLink},
		{"hard link forward", buildTar(t, hdr(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "layer.tar"}), layer), ErrUnsafeLink},
		{"hard link outside", buildTar(t, layer, hdr(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../layer.tar"})), ErrUnsafeLink},
		{"hard link to a directory", buildTar(t, dir("d/"), hdr(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "d"})), ErrUnsafeLink},
	}
	for _, tt := range tests {
		for _, kind := range []string{"none", "zstd"} {
			input := tt.input
			if kind != "none" {
				input = compress(t, kind, tt.input)
				if tt.name == "cut inside data" {
					// Truncate the compressed stream rather than the tar.
					input = compress(t, kind, good)
					input = input[:len(input)/2]
				}
			}
			for _, st := range strategiesFor(kind) {
				t.Run(fmt.Sprintf("%s/%s/%s", tt.name, kind, st), func(t *testing.T) {
					r, err := reorderWith(t, input, st, "none")
					t.Log(err)
					if !errors.Is(err, tt.want) {
						t.Fatalf("err = %v, want %v", err, tt.want)
					}
					// Everything is validated before the first byte is written.
					if len(r.out) != 0 {
						t.Fatalf("wrote %d bytes before failing", len(r.out))
					}
				})
			}
		}
	}
}

func TestReorderLimits(t *testing.T) {
	input := dockerLegacy(t, 10<<10)
	n := len(readTar(t, input))
	if _, err := reorderWith(t, input, Indexed, "none", WithMaxEntries(n-1)); !errors.Is(err, ErrLimit) {
		t.Errorf("entries over the limit: err = %v, want ErrLimit", err)
	}
	if _, err := reorderWith(t, input, Indexed, "none", WithMaxEntries(n)); err != nil {
		t.Errorf("entries at the limit: %v", err)
	}
	// The metadata limit applies however the input is read, so that the
	// verdict does not depend on the strategy.
	for _, st := range []Strategy{Indexed, Reread, Spill} {
		if _, err := reorderWith(t, input, st, "none", WithMaxMetadata(64)); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: metadata over the limit: err = %v, want ErrLimit", st, err)
		}
	}
	// PAX headers in a row would otherwise pile up in memory; 1.2 MB of them
	// is over tarscan's 1 MiB header limit, which reorder shares.
	var chain bytes.Buffer
	pax := []byte(paxRecord("comment", string(bytes.Repeat([]byte("x"), 60000))))
	one := buildTar(t, reg("PaxHeaders/x", pax))
	one = patchType(one[:len(one)-2*blockSize], 0, tar.TypeXHeader)
	for range 20 {
		chain.Write(one)
	}
	chain.Write(buildTar(t, reg("x", []byte("x"))))
	for _, st := range []Strategy{Indexed, Reread, Spill} {
		if _, err := reorderWith(t, chain.Bytes(), st, "none"); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: 1.2 MB of PAX headers: err = %v, want ErrLimit", st, err)
		}
	}
}

// Reorder's limits are tarscan's defaults, overridden per option.
func TestReorderLimitOptions(t *testing.T) {
	o, err := makeOptions(nil)
	if err != nil || o.limits != tarscan.DefaultLimits {
		t.Fatalf("default limits %+v (%v), want %+v", o.limits, err, tarscan.DefaultLimits)
	}
	o, err = makeOptions([]Option{WithMaxEntries(7), WithMaxMetadata(9)})
	want := tarscan.DefaultLimits
	want.Entries, want.Buffered = 7, 9
	if err != nil || o.limits != want {
		t.Fatalf("limits %+v (%v), want %+v", o.limits, err, want)
	}
	// tarscan reads 0 as "the default", so reorder refuses it.
	if _, err := Reorder(context.Background(), io.Discard, bytes.NewReader(dockerLegacy(t, 100)), WithMaxMetadata(0)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("metadata limit 0: err = %v, want ErrInvalidArgument", err)
	}
}

// Reorder's sentinels are tarscan's, so errors.Is works with either name.
func TestReorderSentinelsAreTarscans(t *testing.T) {
	_, err := reorderWith(t, buildTar(t, reg("../x", []byte("x"))), Indexed, "none")
	if !errors.Is(err, tarscan.ErrUnsafePath) || !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("err = %v", err)
	}
}

// A second read that differs from the first is caught, not copied.
func TestReorderRereadDetectsChange(t *testing.T) {
	first, second := dockerLegacy(t, 10<<10), docker25(t, 10<<10)
	var out bytes.Buffer
	_, err := Reorder(context.Background(), &out, onlyReader{bytes.NewReader(first)}, WithRank(testRank),
		WithReopen(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(second)), nil }))
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
}

// Cancelling stops the copy and reports the context's error.
func TestReorderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Reorder(ctx, io.Discard, bytes.NewReader(dockerLegacy(t, 10<<10)), WithRank(testRank))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
