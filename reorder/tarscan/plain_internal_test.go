package tarscan

import (
	"archive/tar"
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// plainSeeds are header blocks as image tools write them, and some that
// plainHeader must leave to tar.Reader.
func plainSeeds(t testing.TB) [][]byte {
	var out [][]byte
	long := strings.Repeat("d/", 60) + "file"
	for _, h := range []tar.Header{
		{Name: "index.json", Mode: 0o644, Size: 1234, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)},
		{Name: "blobs/sha256/", Mode: 0o755, Typeflag: tar.TypeDir, Uname: "root", Gname: "root"},
		{Name: "a/link", Linkname: "../b", Typeflag: tar.TypeSymlink, Uid: 1000, Gid: 1000},
		{Name: "hard", Linkname: "index.json", Typeflag: tar.TypeLink, ModTime: time.Unix(1700000000, 0)},
		{Name: long, Size: 7, Typeflag: tar.TypeReg},                                      // USTAR prefix
		{Name: "pax", Size: 1, Typeflag: tar.TypeReg, PAXRecords: map[string]string{"x": "y"}}, // PAX
		{Name: "gnu", Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatGNU},
		{Name: "big", Size: 1 << 40, Typeflag: tar.TypeReg, Uid: 1 << 30},
		{Name: "../escape", Typeflag: tar.TypeReg},
		{Name: "fifo", Typeflag: tar.TypeFifo},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Flush()
		out = append(out, buf.Bytes()[:BlockSize])
	}
	return append(out, make([]byte, BlockSize))
}

// FuzzPlainHeader holds plainHeader to archive/tar: whatever block it
// accepts, tar.Reader must read without error into an equal header.
func FuzzPlainHeader(f *testing.F) {
	for _, s := range plainSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixSum bool) {
		var blk [BlockSize]byte
		copy(blk[:], data)
		if fixSum {
			// A mutated block with a right checksum reaches the parsing
			// that a random one never passes the checksum to reach.
			var sum int64
			for i, c := range blk {
				if 148 <= i && i < 156 {
					c = ' '
				}
				sum += int64(c)
			}
			copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
		}
		got := plainHeader(&blk)
		if got == nil {
			return
		}
		want, err := tar.NewReader(bytes.NewReader(blk[:])).Next()
		if err != nil {
			t.Fatalf("plainHeader accepted a block tar.Reader rejects (%v): %+v", err, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("plainHeader:\n%+v\ntar.Reader:\n%+v", got, want)
		}
	})
}

// TestPlainHeaderTakesWhatImageToolsWrite: the fast path is taken for
// plain headers (or the scanner gains nothing) and left for the rest.
func TestPlainHeaderTakesWhatImageToolsWrite(t *testing.T) {
	seeds := plainSeeds(t)
	for i, want := range []bool{true, true, true, true, true, false, false, false, false, false, false} {
		var blk [BlockSize]byte
		copy(blk[:], seeds[i])
		if got := plainHeader(&blk) != nil; got != want {
			t.Errorf("seed %d: plain %v, want %v", i, got, want)
		}
	}
}
