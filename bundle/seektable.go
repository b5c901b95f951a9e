package bundle

import (
	"encoding/binary"
	"fmt"
	"math"
)

// seekTable builds the seek table of the zstd seekable format
// (facebook/zstd contrib/seekable_format): one entry per frame with its
// compressed and decompressed size and the low 32 bits of the XXH64 of its
// decompressed bytes, in a skippable frame every zstd decoder passes over.
// ferry writes it itself because a frame compressed as a stream is never
// held whole in memory, which the format's Go encoder requires.
type seekTable struct {
	entries []byte
	frames  uint32
}

const (
	seekTableFrameMagic = 0x184D2A5E // skippable frame, tag 0xE
	seekableMagic       = 0x8F92EAB1
	seekTableChecksums  = 0x80 // descriptor: entries carry checksums
)

func (t *seekTable) add(compressed, decompressed int64, sum uint64) error {
	if compressed > math.MaxUint32 || decompressed > math.MaxUint32 || t.frames == math.MaxUint32 {
		return fmt.Errorf("seek table: frame of %d bytes (%d compressed) or frame %d does not fit", decompressed, compressed, t.frames)
	}
	t.entries = binary.LittleEndian.AppendUint32(t.entries, uint32(compressed))
	t.entries = binary.LittleEndian.AppendUint32(t.entries, uint32(decompressed))
	t.entries = binary.LittleEndian.AppendUint32(t.entries, uint32(sum))
	t.frames++
	return nil
}

// frame is the table as the skippable frame that ends the stream.
func (t *seekTable) frame() ([]byte, error) {
	payload := len(t.entries) + 9
	if payload > math.MaxUint32 {
		return nil, fmt.Errorf("seek table: %d frames do not fit", t.frames)
	}
	out := make([]byte, 0, 8+payload)
	out = binary.LittleEndian.AppendUint32(out, seekTableFrameMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(payload))
	out = append(out, t.entries...)
	out = binary.LittleEndian.AppendUint32(out, t.frames)
	out = append(out, seekTableChecksums)
	return binary.LittleEndian.AppendUint32(out, seekableMagic), nil
}
