package bundle

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/klauspost/compress/zstd"
)

// frames reads a seek-table zstd stream forward, frame by frame, with a
// streaming decoder: a blob spanning many frames is decoded into the
// caller's buffer, not into a fresh buffer per frame held in a cache.
type frames struct {
	ra       io.ReaderAt
	table    seekable.SeekTable
	inflated *atomic.Int64
	// checked is nil unless sections check what they decode (OffsetTar):
	// then each frame's checksum and length are checked when it is read
	// to its end, and checked records which frames were.
	checked []atomic.Bool
	failed  atomic.Pointer[error] // the first check that failed
	// idle keeps the decoders of checked frames, which a long pass reuses
	// from first to last frame: a sync.Pool drops them at every garbage
	// collection, and reallocating their windows makes the heap, and the
	// RSS, creep up with the archive's size.
	idle chan *zstd.Decoder
}

// Decoders and input buffers are shared by every section of every archive.
// A decoder in synchronous mode (concurrency 1) runs no goroutines, so the
// pool may drop it without Close. Frame checksums are skipped: everything
// read through a section is a blob, and blobs are checked by digest.
var (
	frameDecoders sync.Pool
	frameInputs   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
)

// section is n bytes of a tar stream from off, read forward through the
// frames that hold them; Seek moves without decoding, and the next Read
// starts over at the frame holding the new position.
type section struct {
	f      *frames
	off, n int64
	pos    int64                     // next byte, relative to off
	frame  seekable.FrameOffsetEntry // the frame dec reads
	at     int64                     // next byte dec yields, relative to the frame
	dec    *zstd.Decoder             // nil when no frame is open
	in     *bufio.Reader
	tmp    [1]byte
}

func (f *frames) section(off, n int64) io.ReadSeekCloser {
	return &section{f: f, off: off, n: n}
}

func (s *section) Read(p []byte) (int, error) {
	if s.pos >= s.n {
		err := s.endFrame()
		s.release()
		if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	abs := uint64(s.off + s.pos)
	if err := s.seekFrame(abs); err != nil {
		return 0, err
	}
	for s.at == int64(s.frame.DecompressedSize) {
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	want := min(int64(len(p)), s.n-s.pos, int64(s.frame.DecompressedSize)-s.at)
	n, err := io.ReadFull(s.dec, p[:want])
	s.at += int64(n)
	s.pos += int64(n)
	s.f.inflated.Add(int64(n))
	if err != nil {
		s.release()
		return n, s.f.fail(fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, s.frame.ID, s.frame.CompressedOffset, noEOF(err)))
	}
	if s.pos == s.n && s.f.checked == nil {
		s.release() // the decoder is not idle until Close
	}
	return n, nil
}

// seekFrame gets the decoder to abs: where it is, by reading on when abs
// is ahead in the frame it is decoding, else by starting over at the frame
// holding abs.
func (s *section) seekFrame(abs uint64) error {
	here := s.frame.DecompressedOffset + uint64(s.at)
	if s.dec != nil && abs == here {
		return nil
	}
	if s.dec == nil || abs < here || abs >= s.frame.DecompressedOffset+uint64(s.frame.DecompressedSize) {
		if err := s.endFrame(); err != nil {
			return err
		}
		return s.open(abs)
	}
	n, err := io.CopyN(io.Discard, s.dec, int64(abs-here))
	s.at += n
	s.f.inflated.Add(n)
	if err != nil {
		s.release()
		return s.f.fail(fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, s.frame.ID, s.frame.CompressedOffset, noEOF(err)))
	}
	return nil
}

// noEOF turns the end of a frame's input into what it means: the frame
// is shorter than the table says.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// open starts decoding the frame holding abs, skipping to it.
func (s *section) open(abs uint64) error {
	e, ok := s.f.table.EntryByDecompressedOffset(abs)
	if !ok {
		return fmt.Errorf("%w: no frame holds byte %d", ErrBadSeekTable, abs)
	}
	if err := s.start(e); err != nil {
		return err
	}
	skip := int64(abs - e.DecompressedOffset)
	n, err := io.CopyN(io.Discard, s.dec, skip)
	s.at = n
	s.f.inflated.Add(n)
	if err != nil {
		s.release()
		return fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, e.ID, e.CompressedOffset, noEOF(err))
	}
	return nil
}

// next moves to the following frame once the current one has given all
// the table says it holds, and no more: the table and the frames agree
// on every byte read, so a range read sees what a full read saw.
func (s *section) next() error {
	if n, err := s.dec.Read(s.tmp[:]); n != 0 || !errors.Is(err, io.EOF) {
		s.release()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("frame is longer than the table says")
		}
		return s.f.fail(fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, s.frame.ID, s.frame.CompressedOffset, err))
	}
	if s.f.checked != nil {
		s.f.checked[s.frame.ID].Store(true)
	}
	e, ok := s.f.table.EntryByID(s.frame.ID + 1)
	if !ok {
		s.release()
		return fmt.Errorf("%w: no frame after frame %d", ErrBadSeekTable, s.frame.ID)
	}
	return s.start(e)
}

// start points the decoder at frame e's compressed bytes.
func (s *section) start(e seekable.FrameOffsetEntry) error {
	if s.dec == nil {
		d, err := s.f.decoder()
		if err != nil {
			return err
		}
		s.dec, s.in = d, frameInputs.Get().(*bufio.Reader)
	}
	s.in.Reset(io.NewSectionReader(s.f.ra, int64(e.CompressedOffset), int64(e.CompressedSize)))
	if err := s.dec.Reset(s.in); err != nil {
		s.release()
		return err
	}
	s.frame, s.at = e, 0
	return nil
}

// decoder takes a decoder from the pool for these frames.
func (f *frames) decoder() (*zstd.Decoder, error) {
	if f.idle != nil {
		select {
		case d := <-f.idle:
			return d, nil
		default:
		}
	} else if d, ok := frameDecoders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxZstdWindow),
		zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.IgnoreChecksum(f.checked == nil))
}

// putDecoder keeps a decoder for the next section.
func (f *frames) putDecoder(d *zstd.Decoder) {
	if f.idle == nil {
		frameDecoders.Put(d)
		return
	}
	select {
	case f.idle <- d:
	default:
	}
}

// release returns the decoder and buffer to their pools.
func (s *section) release() {
	if s.dec == nil {
		return
	}
	s.dec.Reset(nil)
	s.in.Reset(nil)
	s.f.putDecoder(s.dec)
	frameInputs.Put(s.in)
	s.dec, s.in = nil, nil
}

func (s *section) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.n
	case io.SeekStart:
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek: negative position %d", offset)
	}
	s.pos = offset
	return offset, nil
}

// Close releases the decoder. Where frames are checked, it first reads
// the rest of the frame the section ended in, so that it is checked too.
func (s *section) Close() error {
	err := s.endFrame()
	s.release()
	return err
}

// plainSection is a section of a source without frames to stream.
type plainSection struct{ *io.SectionReader }

func (plainSection) Close() error { return nil }

// endFrame reads the rest of the open frame, where frames are checked, so
// that its checksum and length are checked and it is marked checked. The
// section keeps its decoder for the frame it reads next: the section that
// scans a whole stream decodes its long-window frames, and were its decoder
// passed to another section through the idle ones, the next decoder it
// took would grow a full window again, so that every idle decoder would
// come to hold one.
func (s *section) endFrame() error {
	if s.f.checked == nil || s.dec == nil {
		return nil
	}
	// One byte past what the table says, to catch a longer frame without
	// decoding all of it.
	left := int64(s.frame.DecompressedSize) - s.at
	n, err := io.CopyN(io.Discard, s.dec, left+1)
	s.f.inflated.Add(n)
	id := s.frame.ID
	switch {
	case errors.Is(err, io.EOF) && n == left:
		err = nil
		s.f.checked[id].Store(true)
	case err == nil || errors.Is(err, io.EOF):
		err = fmt.Errorf("frame holds %d bytes, the table says %d", s.at+n, s.frame.DecompressedSize)
	}
	if err != nil {
		s.release()
		return s.f.fail(fmt.Errorf("%w: frame %d at byte %d: %w", ErrBadSeekTable, id, s.frame.CompressedOffset, err))
	}
	return nil
}

// checkFrame decodes frame id whole, checking it.
func (f *frames) checkFrame(id int64) error {
	e, ok := f.table.EntryByID(id)
	if !ok {
		return f.fail(fmt.Errorf("%w: no frame %d", ErrBadSeekTable, id))
	}
	s := &section{f: f, off: int64(e.DecompressedOffset), n: int64(e.DecompressedSize)}
	if err := s.start(e); err != nil {
		return f.fail(err)
	}
	defer s.release()
	return s.endFrame()
}

// fail records the first check that failed, and returns err.
func (f *frames) fail(err error) error {
	f.failed.CompareAndSwap(nil, &err)
	return err
}
