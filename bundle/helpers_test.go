package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/rancher/ferry/bundle"
)

// memBlobs serves layers from memory, optionally corrupting one.
type memBlobs struct {
	data    map[v1.Hash][]byte
	opened  map[v1.Hash]int
	corrupt func(v1.Hash, []byte) []byte
}

func newMemBlobs() *memBlobs {
	return &memBlobs{data: map[v1.Hash][]byte{}, opened: map[v1.Hash]int{}}
}

func (m *memBlobs) Open(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	b, ok := m.data[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	m.opened[d.Digest]++
	if m.corrupt != nil {
		b = m.corrupt(d.Digest, b)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type entry struct {
	name string
	size int64
	data []byte
}

// readEntries decompresses a bundle and returns every entry.
func readEntries(t testing.TB, b []byte) []entry {
	t.Helper()
	rc, _, err := bundle.Decompress(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, entry{h.Name, h.Size, data})
	}
}

// zstdFrames splits a zstd stream into frames by walking block headers
// (RFC 8878 §3.1.1), and returns each frame's window size.
func zstdFrames(t testing.TB, b []byte) (frames [][]byte, windows []uint64) {
	t.Helper()
	for len(b) > 0 {
		if len(b) >= 8 && binary.LittleEndian.Uint32(b)&^0xF == 0x184D2A50 {
			b = b[8+binary.LittleEndian.Uint32(b[4:]):] // skippable: the seek table
			continue
		}
		if len(b) < 6 || binary.LittleEndian.Uint32(b) != 0xFD2FB528 {
			t.Fatalf("not a zstd frame at %d bytes from the end", len(b))
		}
		fhd := b[4]
		single := fhd&0x20 != 0
		pos := 5
		window := uint64(0)
		if !single {
			wd := b[pos]
			exp, mant := uint64(wd>>3), uint64(wd&7)
			base := uint64(1) << (10 + exp)
			window = base + base/8*mant
			pos++
		}
		pos += []int{0, 1, 2, 4}[fhd&3]
		fcs := []int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcs = 1
		}
		pos += fcs
		for {
			hdr := uint32(b[pos]) | uint32(b[pos+1])<<8 | uint32(b[pos+2])<<16
			last, typ, size := hdr&1 == 1, (hdr>>1)&3, int(hdr>>3)
			pos += 3
			if typ == 1 {
				size = 1
			}
			pos += size
			if last {
				break
			}
		}
		if fhd&4 != 0 {
			pos += 4
		}
		frames = append(frames, b[:pos])
		windows = append(windows, window)
		b = b[pos:]
	}
	return frames, windows
}

// appendLayer adds a layer shared with another image.
func appendLayer(t testing.TB, img v1.Image, l v1.Layer) v1.Image {
	t.Helper()
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
