package bundle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// Every frame's seek-table checksum, now read from the frame's trailer,
// must be the low 32 bits of the XXH64 of its content, for frames that
// compress (level 1 by choice), that do not, and short ones.
func TestSeekTableChecksumsAreXXH64OfContent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	random := make([]byte, zstdChunk*2+777)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("ferry writes frames in order. "), zstdChunk/15)
	for _, level := range []int{0, 1} {
		for name, in := range map[string][]byte{"random": random, "text": text, "short": random[:100]} {
			var out bytes.Buffer
			p, err := newParallelZstd(&out, level, options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			e := p.table.entries
			if len(e) == 0 || len(e)%12 != 0 {
				t.Fatalf("level %d %s: seek table entries %d bytes", level, name, len(e))
			}
			off := 0
			for ; len(e) > 0; e = e[12:] {
				n := int(binary.LittleEndian.Uint32(e[4:]))
				want := uint32(xxhash.Sum64(in[off : off+n]))
				if got := binary.LittleEndian.Uint32(e[8:]); got != want {
					t.Fatalf("level %d %s: frame at %d: checksum %#x, want %#x", level, name, off, got, want)
				}
				off += n
			}
			if off != len(in) {
				t.Fatalf("level %d %s: table covers %d of %d bytes", level, name, off, len(in))
			}
		}
	}
}

// A frame without a content checksum has its content hashed instead.
func TestFrameChecksumWithoutTrailer(t *testing.T) {
	content := []byte("abc")
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	if got, want := frameChecksum(frame, content), uint32(xxhash.Sum64(content)); got != want {
		t.Fatalf("checksum %#x, want %#x", got, want)
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// A destination that fails while workers write frames: the error reaches
// Write or Close, and every worker has finished when Close returns.
func TestParallelZstdWriteErrorSurfaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	chunk := make([]byte, zstdChunk)
	for i := range chunk {
		chunk[i] = byte(rng.Uint32())
	}
	p, err := newParallelZstd(&failAfter{n: 3 * zstdChunk}, 1, options{})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for range 16 {
		if _, werr = p.Write(chunk); werr != nil {
			break
		}
	}
	cerr := p.Close()
	if !errors.Is(werr, errDiskFull) && !errors.Is(cerr, errDiskFull) {
		t.Fatalf("Write: %v, Close: %v; want %v", werr, cerr, errDiskFull)
	}
	if len(p.pending) != 0 {
		t.Fatalf("%d frames still in flight after Close", len(p.pending))
	}
}
