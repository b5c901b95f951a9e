package bundle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/SaveTheRbtz/zstd-seekable-format-go/pkg/framecache"
	"github.com/klauspost/compress/zstd"
)

// ErrBadSeekTable is returned when a zstd stream ends with a seek table that
// does not describe it: a truncated, appended-to or tampered file.
var ErrBadSeekTable = errors.New("seek table does not match the stream")

// tarAt is the tar stream inside a compressed archive, readable by offset.
type tarAt struct {
	io.ReaderAt
	size        int64 // -1 when only a full pass would tell
	compression Compression
	seekable    bool
	frames      *frames       // set when seekable
	inflated    *atomic.Int64 // decompressed bytes produced so far
}

// section reads n bytes from off in order: a seek-table stream through a
// streaming decoder, anything else through ReadAt.
func (t *tarAt) section(off, n int64) io.ReadSeekCloser {
	if t.frames != nil {
		return t.frames.section(off, n)
	}
	return plainSection{io.NewSectionReader(t, off, n)}
}

// openTarAt gives random access to the tar inside ra: directly for plain
// tar, frame by frame through the seek table for ferry's zstd bundles, and
// by decompressing from the start (continuing forward when it can) for gzip
// and zstd streams without a table.
func openTarAt(ra io.ReaderAt, size int64) (*tarAt, error) {
	head := make([]byte, 4)
	if _, err := ra.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading archive header: %w", err)
	}
	comp := detect(head)
	t := &tarAt{compression: comp, size: -1, inflated: new(atomic.Int64)}
	switch comp {
	case None:
		t.ReaderAt, t.size = countingReaderAt{ra, t.inflated}, size
		return t, nil
	case Zstd:
		sr, table, err := openSeekable(ra, size, t.inflated)
		if err != nil {
			return nil, err
		}
		if sr != nil {
			t.frames = &frames{ra: ra, table: table, inflated: t.inflated}
			t.ReaderAt, t.size, t.seekable = &tableAt{small: sr, f: t.frames}, int64(table.Size()), true
			return t, nil
		}
	}
	t.ReaderAt = &streamAt{open: func() (io.ReadCloser, error) {
		rc, _, err := Decompress(io.NewSectionReader(ra, 0, size))
		return rc, err
	}, inflated: t.inflated}
	return t, nil
}

// detect names the codec from an archive's first bytes. A zstd skippable
// frame (what pzstd writes first) starts a zstd stream too.
func detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, zstdMagic), isSkippable(head):
		return Zstd
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	}
	return None
}

func isSkippable(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head)&^0xF == 0x184D2A50
}

// seekTableMagic ends a seek table's footer.
const seekTableMagic = 0x8F92EAB1

// openSeekable returns a reader over the decompressed stream and its table
// when ra ends with a seek table, nil when it has none, and an error when
// the table does not add up to the file it ends.
func openSeekable(ra io.ReaderAt, size int64, inflated *atomic.Int64) (io.ReaderAt, seekable.SeekTable, error) {
	var foot [4]byte
	var none seekable.SeekTable
	if size < 17 {
		return nil, none, nil
	}
	if _, err := ra.ReadAt(foot[:], size-4); err != nil {
		return nil, none, fmt.Errorf("reading archive tail: %w", err)
	}
	if binary.LittleEndian.Uint32(foot[:]) != seekTableMagic {
		return nil, none, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxZstdWindow), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, none, err
	}
	// Sieve keeps the metadata frame, which every lookup revisits, while a
	// scan passes through one header frame after another.
	cache := framecache.NewSieve(framecache.Limits{MaxFrames: 16, MaxBytes: 16 << 20})
	sr, err := seekable.NewReader(io.NewSectionReader(ra, 0, size), countingDecoder{dec, inflated}, seekable.WithReaderFrameCache(cache))
	if err != nil {
		return nil, none, fmt.Errorf("%w: %w", ErrBadSeekTable, err)
	}
	table, err := sr.SeekTable()
	if err != nil {
		return nil, none, err
	}
	if err := checkTable(table, size); err != nil {
		return nil, none, err
	}
	return sr, table, nil
}

// checkTable requires the frames to tile the file up to the table itself.
func checkTable(table seekable.SeekTable, size int64) error {
	n := table.NumFrames()
	end := uint64(0)
	if last, ok := table.EntryByID(n - 1); ok {
		end = last.CompressedOffset + uint64(last.CompressedSize)
	}
	entry := uint64(8)
	if table.HasChecksums() {
		entry = 12
	}
	if want := uint64(size) - (8 + entry*uint64(n) + 9); end != want {
		return fmt.Errorf("%w: its frames end at byte %d, the table starts at %d", ErrBadSeekTable, end, want)
	}
	return nil
}

// countingDecoder counts the bytes a seekable reader decompresses.
type countingDecoder struct {
	dec *zstd.Decoder
	n   *atomic.Int64
}

func (c countingDecoder) DecodeAll(in, dst []byte) ([]byte, error) {
	out, err := c.dec.DecodeAll(in, dst)
	c.n.Add(int64(len(out) - len(dst)))
	return out, err
}

// streamAt reads a stream that only decompresses forward: a read behind the
// current position starts again from the beginning, a read ahead skips
// forward. Reading entries in archive order therefore costs one pass.
type streamAt struct {
	mu       sync.Mutex
	open     func() (io.ReadCloser, error)
	rc       io.ReadCloser
	pos      int64
	inflated *atomic.Int64
}

func (s *streamAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == nil || off < s.pos {
		if err := s.reopen(); err != nil {
			return 0, err
		}
	}
	if off > s.pos {
		n, err := io.CopyN(io.Discard, s.rc, off-s.pos)
		s.advance(n)
		if err != nil {
			return 0, err
		}
	}
	// Not io.ReadFull: it would turn a clean end into ErrUnexpectedEOF, and
	// that is what a truncated gzip or zstd stream reports.
	n := 0
	for n < len(p) {
		k, err := s.rc.Read(p[n:])
		n += k
		s.advance(int64(k))
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *streamAt) advance(n int64) {
	s.pos += n
	s.inflated.Add(n)
}

func (s *streamAt) reopen() error {
	if s.rc != nil {
		s.rc.Close()
	}
	rc, err := s.open()
	if err != nil {
		return err
	}
	s.rc, s.pos = rc, 0
	return nil
}

func (s *streamAt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == nil {
		return nil
	}
	err := s.rc.Close()
	s.rc = nil
	return err
}

// countingReaderAt counts the bytes read from a plain tar.
type countingReaderAt struct {
	ra io.ReaderAt
	n  *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}
