package reorder

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
)

const blockSize = 512

// offsetter reports how many bytes of the tar stream tar.Reader has consumed.
type offsetter interface {
	offset() int64
}

// counter counts what tar.Reader reads. It deliberately has no Seek method,
// so tar.Reader reads (and the layers below see) every byte.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *counter) offset() int64 { return c.n }

// seekCounter lets tar.Reader skip entry data with Seek, so indexing a plain
// tar file reads only its headers.
type seekCounter struct {
	counter
	s io.Seeker
}

func (c *seekCounter) Seek(off int64, whence int) (int64, error) {
	n, err := c.s.Seek(off, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

// record is what the plan keeps per entry: its byte range in the stream
// (header blocks through padding) and its rank. Heads and headers are
// dropped once classified, so the index stays small.
type record struct {
	name  string // canonical, for error messages and the second pass
	idx   int    // position in the input
	off   int64  // first header block (PAX and GNU long-name blocks included)
	end   int64  // first byte after the data's padding
	rank  int    // effective rank, clamped to Bulk
	isDir bool
}

func (r record) size() int64 { return r.end - r.off }

func (r record) meta() bool { return r.rank < Bulk }

// scanner walks a tar stream entry by entry, validating and ranking each.
type scanner struct {
	o       *options
	tr      *tar.Reader
	pos     offsetter
	index   map[string]int // canonical name -> position in recs
	recs    []record
	prevEnd int64
	head    []byte
	size    int64 // total stream size when known, else -1
}

func newScanner(o *options, r io.Reader, pos offsetter, size int64) *scanner {
	return &scanner{
		o:     o,
		tr:    tar.NewReader(r),
		pos:   pos,
		index: make(map[string]int),
		head:  make([]byte, HeadSize),
		size:  size,
	}
}

// next reads, validates and ranks the next entry. It returns io.EOF at a
// proper end of archive. The entry's data is left for tar.Reader to skip or
// for the caller to drain.
func (s *scanner) next(ctx context.Context) (record, error) {
	if err := ctx.Err(); err != nil {
		return record{}, err
	}
	h, err := s.tr.Next()
	if err != nil {
		return record{}, s.nextError(h, err)
	}
	if len(s.recs) >= s.o.maxEntries {
		return record{}, fmt.Errorf("%w: more than %d entries", ErrLimit, s.o.maxEntries)
	}
	// The type first: for a global PAX header tar.Reader stops mid-entry.
	if err := checkType(h); err != nil {
		return record{}, err
	}
	rec, err := s.locate(h)
	if err != nil {
		return record{}, err
	}
	if err := s.validate(h, &rec); err != nil {
		return record{}, err
	}
	head, err := s.readHead(h)
	if err != nil {
		return record{}, err
	}
	rec.rank = s.rank(h, head)
	s.index[rec.name] = len(s.recs)
	s.recs = append(s.recs, rec)
	s.prevEnd = rec.end
	return rec, nil
}

// nextError classifies a failure of tar.Reader.Next. io.EOF is only a clean
// end if the end-of-archive marker was there: a stream that stops exactly
// between two entries is a truncated download, not a smaller archive.
func (s *scanner) nextError(h *tar.Header, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		if s.pos.offset()-s.prevEnd < blockSize {
			return fmt.Errorf("%w: no end-of-archive marker (%d entries read)", ErrTruncated, len(s.recs))
		}
		return io.EOF
	case errors.Is(err, tar.ErrInsecurePath) && h != nil:
		return fmt.Errorf("%w %q", ErrUnsafePath, h.Name)
	}
	return s.wrap(err)
}

// wrap maps tar and I/O errors after entry len(s.recs) to sentinels.
func (s *scanner) wrap(err error) error {
	where := "at the first entry"
	if n := len(s.recs); n > 0 {
		where = fmt.Sprintf("after entry %d (%q)", n, s.recs[n-1].name)
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s: %w", ErrTruncated, where, err)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w: %s: %w", ErrMalformed, where, err)
	case errors.Is(err, ErrLimit), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("reading archive %s: %w", where, err)
}

// locate works out the entry's byte range. tar.Reader has just consumed the
// header blocks, so they span prevEnd up to the current offset; the data
// follows, padded to a block. Header-only types have no data whatever their
// size field says, exactly as tar.Reader treats them.
func (s *scanner) locate(h *tar.Header) (record, error) {
	dataOff := s.pos.offset()
	hdrLen := dataOff - s.prevEnd
	if hdrLen > s.o.maxHeader {
		return record{}, fmt.Errorf("%w: entry %q: %d header bytes", ErrLimit, h.Name, hdrLen)
	}
	if hdrLen < blockSize || hdrLen%blockSize != 0 {
		return record{}, fmt.Errorf("%w: entry %q: header of %d bytes", ErrMalformed, h.Name, hdrLen)
	}
	var data int64
	if h.Typeflag == tar.TypeReg {
		data = h.Size
	}
	const maxData = 1 << 62 // keeps the arithmetic below from overflowing
	if data < 0 || data > maxData {
		return record{}, fmt.Errorf("%w: entry %q: size %d", ErrMalformed, h.Name, h.Size)
	}
	end := dataOff + (data+blockSize-1)/blockSize*blockSize
	if s.size >= 0 && end > s.size {
		return record{}, fmt.Errorf("%w: entry %q needs %d bytes, the archive has %d", ErrTruncated, h.Name, end, s.size)
	}
	return record{idx: len(s.recs), off: s.prevEnd, end: end, isDir: h.Typeflag == tar.TypeDir}, nil
}

// validate checks name, uniqueness and link targets.
func (s *scanner) validate(h *tar.Header, rec *record) error {
	name, err := cleanPath(h.Name)
	if err != nil {
		return err
	}
	if name == "." && !rec.isDir {
		return fmt.Errorf("%w %q: not a directory", ErrUnsafePath, h.Name)
	}
	if _, dup := s.index[name]; dup {
		return fmt.Errorf("%w %q", ErrDuplicate, h.Name)
	}
	rec.name = name
	switch h.Typeflag {
	case tar.TypeSymlink:
		return checkSymlink(name, h.Linkname)
	case tar.TypeLink:
		_, err := s.linkTarget(h)
		return err
	}
	return nil
}

// linkTarget returns the index of a hard link's target, which tar requires
// to be an earlier entry: extraction links to the file already written.
func (s *scanner) linkTarget(h *tar.Header) (int, error) {
	target, err := cleanPath(h.Linkname)
	if err != nil {
		return 0, fmt.Errorf("%w: %q -> %q", ErrUnsafeLink, h.Name, h.Linkname)
	}
	i, ok := s.index[target]
	if !ok || s.recs[i].isDir {
		return 0, fmt.Errorf("%w: hard link %q -> %q: no earlier file of that name", ErrUnsafeLink, h.Name, h.Linkname)
	}
	return i, nil
}

// readHead reads the first bytes of a regular file for the RankFunc.
func (s *scanner) readHead(h *tar.Header) ([]byte, error) {
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return nil, nil
	}
	n := int(min(h.Size, HeadSize))
	if _, err := io.ReadFull(s.tr, s.head[:n]); err != nil {
		return nil, s.wrap(err)
	}
	return s.head[:n], nil
}

// rank asks the RankFunc, clamps to Bulk and keeps hard links behind their
// targets, so that a stable sort never moves a link ahead of its file.
func (s *scanner) rank(h *tar.Header, head []byte) int {
	r := min(s.o.rank(h, head), Bulk)
	if h.Typeflag == tar.TypeLink {
		if i, err := s.linkTarget(h); err == nil {
			r = max(r, s.recs[i].rank)
		}
	}
	return r
}

// drain reads the rest of the current entry's data through tar.Reader with
// a large buffer, so whatever sits below it (a spill file, a router) sees
// big writes instead of tar.Reader's small internal skips.
func (s *scanner) drain(ctx context.Context, buf []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := s.tr.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return s.wrap(err)
		}
	}
}
