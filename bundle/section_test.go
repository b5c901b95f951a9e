package bundle_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// bigLayerBundle writes a bundle holding one image with a layer spanning
// several zstd frames, and returns the layer's digest and bytes.
func bigLayerBundle(t *testing.T, c bundle.Compression) ([]byte, v1.Hash, []byte) {
	t.Helper()
	blobs := newMemBlobs()
	img := verifytest.ImageOf(t, blobs.data, verifytest.RandomImage(t, 7<<20, 1), "docker.io/rancher/big:v1")
	out := write(t, []bundle.Image{img}, blobs, bundle.WithCompression(c, 0))
	var d v1.Hash
	var data []byte
	for h, b := range blobs.data {
		if len(b) > len(data) {
			d, data = h, b
		}
	}
	return out, d, data
}

func TestBlobSection(t *testing.T) {
	for _, c := range []bundle.Compression{bundle.Zstd, bundle.None} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			out, d, want := bigLayerBundle(t, c)
			a := openBytes(t, out)
			rs, size, err := a.BlobSection(d)
			if err != nil || size != int64(len(want)) {
				t.Fatalf("BlobSection: %d bytes, %v", size, err)
			}
			defer rs.Close()
			before := a.Inflated()
			got, err := io.ReadAll(rs)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("full read: %d of %d bytes, %v", len(got), len(want), err)
			}
			if spent := a.Inflated() - before; spent < size || spent > size+4<<20 {
				t.Errorf("reading %d bytes inflated %d", size, spent)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 50 {
				from := rng.Int64N(size)
				n := rng.Int64N(min(size-from, 3<<20)) + 1
				if _, err := rs.Seek(from, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, n)
				if _, err := io.ReadFull(rs, got); err != nil || !bytes.Equal(got, want[from:from+n]) {
					t.Fatalf("[%d, +%d): %v", from, n, err)
				}
			}
			if _, err := rs.Seek(-1, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(rs); err != nil || len(b) != 1 || b[0] != want[size-1] {
				t.Fatalf("last byte: %v %v", b, err)
			}
		})
	}
}

// TestBlobSectionChecksFrameSizes moves bytes between two frames' entries
// in the seek table, keeping its total: the frames no longer start where
// the table says, and reading across them must fail rather than give
// bytes a range read would see differently.
func TestBlobSectionChecksFrameSizes(t *testing.T) {
	out, d, want := bigLayerBundle(t, bundle.Zstd)
	n := binary.LittleEndian.Uint32(out[len(out)-9:])
	entry := 8
	if out[len(out)-5]&0x80 != 0 {
		entry = 12
	}
	entries := len(out) - 9 - int(n)*entry
	// The largest frames hold the layer's data.
	big := 0
	for i := 1; i < int(n); i++ {
		at := entries + i*entry
		if binary.LittleEndian.Uint32(out[at+4:]) == 2<<20 && binary.LittleEndian.Uint32(out[at+4+entry:]) == 2<<20 {
			big = i
			break
		}
	}
	if big == 0 {
		t.Fatal("no two full frames in a row")
	}
	at := entries + big*entry
	binary.LittleEndian.PutUint32(out[at+4:], 2<<20-1000)
	binary.LittleEndian.PutUint32(out[at+4+entry:], 2<<20+1000)
	a := openBytes(t, out)
	rc, err := a.Blob(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, bundle.ErrBadSeekTable) {
		t.Fatalf("read %d of %d bytes across mislabelled frames: %v", len(got), len(want), err)
	}
	// A range just across where the table ends the shortened frame.
	end := int64(0)
	for i := 0; i <= big; i++ {
		end += int64(binary.LittleEndian.Uint32(out[entries+i*entry+4:]))
	}
	off, _, err := a.BlobOffset(d)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := a.BlobSection(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if _, err := rs.Seek(end-off-10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rs, make([]byte, 20)); !errors.Is(err, bundle.ErrBadSeekTable) {
		t.Fatalf("range across the frame the table shortens: %v", err)
	}
}
