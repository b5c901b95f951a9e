package bundle

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

const (
	// readAhead is how many compressed bytes one read of a small frame
	// takes in, through the small frames after it: a scan of a bundle of
	// many small images visits one header frame per layer, with only a
	// small layer frame between two of them, and one pread per frame
	// would cost more than decoding them.
	readAhead = 256 << 10
	// aheadFrame is the largest compressed frame read ahead with its
	// neighbours; a larger one (a layer's data) ends the read.
	aheadFrame = 64 << 10
	// cacheFrames and cacheBytes bound the decoded frames kept.
	cacheFrames = 16
	cacheBytes  = 16 << 20
)

// frameCache decodes whole the seek table's frames of up to cachedFrame
// bytes, with one decoder, and keeps the last few decoded: a scan reads
// each header frame a few times in a row (the header, the entry's first
// bytes), and metadata reads come back to the metadata frames. Evicted
// frames' buffers, and the read-ahead buffer, are reused, so a scan
// allocates nothing per frame.
//
// Each frame gets the checks the zstd seekable format's reader makes: its
// compressed length, its zstd checksum, its length and checksum in the
// table.
type frameCache struct {
	ra       io.ReaderAt
	table    seekable.SeekTable
	inflated *atomic.Int64

	mu       sync.Mutex
	dec      *zstd.Decoder // made on first use
	ahead    []byte        // compressed bytes of the file from aheadOff
	aheadOff int64
	slots    [cacheFrames]cachedFrameSlot
	hand     int // CLOCK eviction: the next slot to consider
	held     int // bytes of every slot's buffer
	// first is frame 0, decoded, kept apart from the slots for the cache's
	// life: in a metadata-first bundle it is the whole metadata section,
	// which readers come back to after a walk has passed every layer's
	// header frames (Open, then Contents or Image), and which would be
	// evicted by then and decoded again, megabytes for thousands of images.
	first []byte
}

type cachedFrameSlot struct {
	id      int64
	data    []byte // nil when the slot is empty
	visited bool
}

func newFrameCache(ra io.ReaderAt, table seekable.SeekTable, inflated *atomic.Int64) *frameCache {
	return &frameCache{ra: ra, table: table, inflated: inflated}
}

// ReadAt copies into p the bytes of frame e from abs on; p must not go
// past the frame's end.
func (c *frameCache) ReadAt(p []byte, e seekable.FrameOffsetEntry, abs uint64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := c.frame(e)
	if err != nil {
		return 0, err
	}
	return copy(p, data[abs-e.DecompressedOffset:]), nil
}

// frame returns frame e decoded, from the cache or decoding it.
func (c *frameCache) frame(e seekable.FrameOffsetEntry) ([]byte, error) {
	if e.ID == 0 && c.first != nil {
		return c.first, nil
	}
	for i := range c.slots {
		if s := &c.slots[i]; s.data != nil && s.id == e.ID {
			s.visited = true
			return s.data, nil
		}
	}
	src, err := c.compressed(e)
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, e.ID, e.CompressedOffset, err)
	}
	if c.dec == nil {
		if c.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(MaxZstdWindow), zstd.WithDecoderMaxWindow(MaxZstdWindow)); err != nil {
			return nil, err
		}
	}
	if e.ID == 0 {
		out, err := c.decode(e, src, make([]byte, 0, e.DecompressedSize))
		if err != nil {
			return nil, err
		}
		c.first = out
		return out, nil
	}
	s := c.victim(int(e.DecompressedSize))
	if cap(s.data) < int(e.DecompressedSize) {
		// Room for the whole frame up front: grown as it decodes, the
		// buffer would be reallocated many times over.
		c.held -= cap(s.data)
		s.data = make([]byte, 0, e.DecompressedSize)
		c.held += cap(s.data)
	}
	out, err := c.decode(e, src, s.data[:0])
	c.held += cap(out) - cap(s.data)
	s.data = out
	if err != nil {
		s.data = s.data[:0:0] // keeps held in step: the buffer is dropped
		c.held -= cap(out)
		return nil, err
	}
	s.id = e.ID
	return out, nil
}

// decode decodes frame e from its compressed bytes src into dst's room and
// checks it; on an error the bytes returned are not the frame's.
func (c *frameCache) decode(e seekable.FrameOffsetEntry, src, dst []byte) ([]byte, error) {
	out, err := c.dec.DecodeAll(src, dst)
	c.inflated.Add(int64(len(out)))
	if err == nil {
		err = c.check(e, out)
	}
	if err != nil {
		return out, fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, e.ID, e.CompressedOffset, err)
	}
	return out, nil
}

// check compares a decoded frame with its table entry.
func (c *frameCache) check(e seekable.FrameOffsetEntry, out []byte) error {
	if len(out) != int(e.DecompressedSize) {
		return fmt.Errorf("frame holds %d bytes, the table says %d", len(out), e.DecompressedSize)
	}
	if c.table.HasChecksums() && uint32(xxhash.Sum64(out)) != e.Checksum {
		return errors.New("checksum does not match the table's")
	}
	return nil
}

// victim empties a slot for a frame of size bytes and returns it; slots
// whose frames were read since the hand last passed get a second chance.
// It drops other slots' buffers while the cache would hold more than
// cacheBytes.
func (c *frameCache) victim(size int) *cachedFrameSlot {
	v := c.evict(nil)
	for c.held-cap(v.data)+size > cacheBytes && c.held > cap(v.data) {
		o := c.evict(v)
		c.held -= cap(o.data)
		o.data = nil
	}
	return v
}

// evict moves the hand to the next slot without a second chance, other
// than skip, empties it and returns it.
func (c *frameCache) evict(skip *cachedFrameSlot) *cachedFrameSlot {
	for {
		s := &c.slots[c.hand]
		c.hand = (c.hand + 1) % len(c.slots)
		if s == skip || (s.visited && s.data != nil) {
			s.visited = false
			continue
		}
		if skip != nil && cap(s.data) == 0 {
			continue // nothing to drop here
		}
		s.id, s.visited = -1, false
		if s.data != nil {
			s.data = s.data[:0]
		}
		return s
	}
}

// compressed returns frame e's compressed bytes, reading ahead through the
// small frames that follow it when it is small itself.
func (c *frameCache) compressed(e seekable.FrameOffsetEntry) ([]byte, error) {
	off, n := int64(e.CompressedOffset), int64(e.CompressedSize)
	if off >= c.aheadOff && off+n <= c.aheadOff+int64(len(c.ahead)) {
		return c.ahead[off-c.aheadOff:][:n], nil
	}
	if n > aheadFrame {
		buf := make([]byte, n)
		k, err := c.ra.ReadAt(buf, off)
		return buf, short(k, n, err)
	}
	end := off + n
	for id := e.ID + 1; ; id++ {
		f, ok := c.table.EntryByID(id)
		next := int64(f.CompressedOffset) + int64(f.CompressedSize)
		if !ok || f.CompressedSize > aheadFrame || next-off > readAhead {
			break
		}
		end = next
	}
	if c.ahead == nil {
		c.ahead = make([]byte, readAhead)
	}
	k, err := c.ra.ReadAt(c.ahead[:end-off], off)
	c.ahead, c.aheadOff = c.ahead[:k], off
	if err := short(k, n, err); err != nil {
		return nil, err
	}
	return c.ahead[:n], nil
}

// short is the error of a read of k bytes where n were needed: none when
// it has them, whatever ReadAt said about the bytes after.
func short(k int, n int64, err error) error {
	if int64(k) >= n {
		return nil
	}
	if err == nil {
		return io.ErrUnexpectedEOF
	}
	return noEOF(err)
}

// Close releases the decoder.
func (c *frameCache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
	c.slots, c.ahead, c.held, c.first = [cacheFrames]cachedFrameSlot{}, nil, 0, nil
}
