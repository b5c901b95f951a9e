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
		table, err := openSeekable(ra, size)
		if err != nil {
			return nil, err
		}
		if table != nil {
			t.frames = &frames{ra: ra, table: *table, inflated: t.inflated}
			small := newFrameCache(ra, *table, t.inflated)
			t.ReaderAt, t.size, t.seekable = &tableAt{small: small, f: t.frames}, int64(table.Size()), true
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

// openSeekable returns the seek table ending ra, nil when ra has none,
// and an error when the table does not add up to the file it ends.
func openSeekable(ra io.ReaderAt, size int64) (*seekable.SeekTable, error) {
	var foot [4]byte
	if size < 17 {
		return nil, nil
	}
	if _, err := ra.ReadAt(foot[:], size-4); err != nil {
		return nil, fmt.Errorf("reading archive tail: %w", err)
	}
	if binary.LittleEndian.Uint32(foot[:]) != seekTableMagic {
		return nil, nil
	}
	// The reader only parses the table here: frames are decoded by a
	// frameCache, with one decoder, reading ahead across small frames.
	sr, err := seekable.NewReader(io.NewSectionReader(ra, 0, size), tableOnly{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSeekTable, err)
	}
	table, err := sr.SeekTable()
	if err != nil {
		return nil, err
	}
	if err := checkTable(table, size); err != nil {
		return nil, err
	}
	return &table, nil
}

// tableOnly is the decoder of a seekable.Reader used only for its table.
type tableOnly struct{}

func (tableOnly) DecodeAll(_, _ []byte) ([]byte, error) {
	return nil, errors.New("bundle: frames are decoded by the frame cache")
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
