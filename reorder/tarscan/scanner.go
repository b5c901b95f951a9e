package tarscan

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
)

// BlockSize is tar's unit: headers, data padding and the end marker.
const BlockSize = 512

// Entry is one validated tar entry and where its bytes are in the stream.
type Entry struct {
	Header *tar.Header
	// Name is the canonical name ("./a/b/" is "a/b").
	Name string
	// Index is the entry's position in the archive, from 0.
	Index int
	// Offset is the first header block (PAX and GNU long-name blocks
	// included), DataOffset the first data byte, End the first byte after
	// the data's padding.
	Offset, DataOffset, End int64
	// Link is the Index of a hard link's target, or -1.
	Link int
}

// Size is how many data bytes the entry has: its size for a regular file,
// 0 for every other type, exactly as tar.Reader treats them.
func (e *Entry) Size() int64 {
	if e.Header.Typeflag == tar.TypeReg {
		return e.Header.Size
	}
	return 0
}

// Scanner reads a tar stream entry by entry, applying the package's rules.
type Scanner struct {
	ra       io.ReaderAt // set by NewReaderAtScanner
	l        Limits
	tr       *tar.Reader
	pos      offsetter
	size     int64
	names    map[string]int
	entries  []Entry
	prevEnd  int64
	buffered int64
}

// NewScanner reads the tar stream r, whose total size is size (-1 when
// unknown). When r is an io.ReadSeeker, data the caller does not read is
// skipped by seeking, so indexing a file or an io.SectionReader reads only
// its headers. Zero fields of l take DefaultLimits.
func NewScanner(r io.Reader, size int64, l Limits) *Scanner {
	var pos offsetter
	if rs, ok := r.(io.ReadSeeker); ok {
		sc := &seekCounter{counter: counter{r: rs}, s: rs}
		r, pos = sc, sc
	} else {
		c := &counter{r: r}
		r, pos = c, c
	}
	return &Scanner{l: l.orDefault(), tr: tar.NewReader(r), pos: pos, size: size, names: map[string]int{}}
}

// NewReaderAtScanner reads the tar stream in ra, of size bytes (-1 when
// unknown), reading only header blocks: data is never touched unless the
// caller reads it. Use it where reading a byte costs more than seeking past
// it, such as a compressed stream with a seek table, where tar.Reader's own
// skipping would read the last byte of every entry.
func NewReaderAtScanner(ra io.ReaderAt, size int64, l Limits) *Scanner {
	s := &Scanner{ra: ra, l: l.orDefault(), size: size, names: map[string]int{}}
	s.restart()
	return s
}

// restart points a fresh tar.Reader at the end of the last entry.
func (s *Scanner) restart() {
	c := &atCounter{base: s.prevEnd}
	c.r = io.NewSectionReader(s.ra, s.prevEnd, 1<<62)
	s.tr, s.pos = tar.NewReader(c), c
}

// Next reads, validates and returns the next entry. It returns io.EOF at a
// proper end of archive, and a wrapped sentinel of this package otherwise.
// The entry's data can be read with Read or ReadAll until the next call.
func (s *Scanner) Next(ctx context.Context) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.ra != nil && len(s.entries) > 0 {
		s.restart()
	}
	h, err := s.tr.Next()
	if err != nil {
		return nil, s.nextError(h, err)
	}
	if len(s.entries) >= s.l.Entries {
		return nil, fmt.Errorf("%w: more than %d entries", ErrLimit, s.l.Entries)
	}
	// The type first: for a global PAX header tar.Reader stops mid-entry.
	if err := checkType(h); err != nil {
		return nil, err
	}
	e, err := s.locate(h)
	if err != nil {
		return nil, err
	}
	if err := s.validate(h, &e); err != nil {
		return nil, err
	}
	s.names[e.Name] = len(s.entries)
	s.entries = append(s.entries, e)
	s.prevEnd = e.End
	return &s.entries[len(s.entries)-1], nil
}

// Entries returns the entries read so far, in archive order.
func (s *Scanner) Entries() []Entry { return s.entries }

// Lookup returns the entry of a canonical name, if it was read.
func (s *Scanner) Lookup(name string) (*Entry, bool) {
	i, ok := s.names[name]
	if !ok {
		return nil, false
	}
	return &s.entries[i], true
}

// Offset is how many bytes of the stream the scanner has consumed.
func (s *Scanner) Offset() int64 { return s.pos.offset() }

// Read reads the current entry's data.
func (s *Scanner) Read(p []byte) (int, error) {
	n, err := s.tr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncated) {
		err = s.wrap(err)
	}
	return n, err
}

// Charge counts the current entry as metadata: a reader holds it in
// memory, or would. Every reader charges the same entries (those its rank
// function calls metadata), so they agree on which archives are too big:
// an entry over Limits.MetadataEntry, or all of them together over
// Limits.Buffered, is ErrLimit.
func (s *Scanner) Charge() error {
	e := &s.entries[len(s.entries)-1]
	size := e.Size()
	if size > s.l.MetadataEntry {
		return fmt.Errorf("%w: %s is %d bytes, over %d for metadata", ErrLimit, e.Name, size, s.l.MetadataEntry)
	}
	if s.buffered+size > s.l.Buffered {
		return fmt.Errorf("%w: metadata over %d MiB in total, at %s", ErrLimit, s.l.Buffered>>20, e.Name)
	}
	s.buffered += size
	return nil
}

// ReadAll charges the current entry (see Charge) and returns its whole
// data, given the first bytes the caller has already read (nil if none),
// in one allocation of the entry's size.
func (s *Scanner) ReadAll(head []byte) ([]byte, error) {
	if err := s.Charge(); err != nil {
		return nil, err
	}
	e := &s.entries[len(s.entries)-1]
	if int64(len(head)) > e.Size() {
		return nil, fmt.Errorf("%w: %s: %d bytes read of %d", ErrMalformed, e.Name, len(head), e.Size())
	}
	data := make([]byte, e.Size())
	copy(data, head)
	if _, err := io.ReadFull(s, data[len(head):]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, s.wrap(err)
	}
	return data, nil
}

// nextError classifies a failure of tar.Reader.Next. io.EOF is only a clean
// end if the end-of-archive marker was there: a stream that stops exactly
// between two entries is a truncated download, not a smaller archive.
func (s *Scanner) nextError(h *tar.Header, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		if len(s.entries) == 0 && s.pos.offset() == 0 {
			return fmt.Errorf("%w: empty stream", ErrTruncated)
		}
		if s.pos.offset()-s.prevEnd < BlockSize {
			return fmt.Errorf("%w: no end-of-archive marker (%d entries read)", ErrTruncated, len(s.entries))
		}
		return io.EOF
	case errors.Is(err, tar.ErrInsecurePath) && h != nil:
		return fmt.Errorf("%w %q", ErrUnsafePath, h.Name)
	}
	return s.wrap(err)
}

// wrap maps tar and I/O errors after the last entry to sentinels.
func (s *Scanner) wrap(err error) error {
	where := "at the first entry"
	if n := len(s.entries); n > 0 {
		where = fmt.Sprintf("after entry %d (%q)", n, s.entries[n-1].Name)
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
// follows, padded to a block.
func (s *Scanner) locate(h *tar.Header) (Entry, error) {
	dataOff := s.pos.offset()
	hdrLen := dataOff - s.prevEnd
	if hdrLen > s.l.HeaderBytes {
		return Entry{}, fmt.Errorf("%w: entry %q: %d header bytes", ErrLimit, h.Name, hdrLen)
	}
	if hdrLen < BlockSize || hdrLen%BlockSize != 0 {
		return Entry{}, fmt.Errorf("%w: entry %q: header of %d bytes", ErrMalformed, h.Name, hdrLen)
	}
	e := Entry{Header: h, Index: len(s.entries), Offset: s.prevEnd, DataOffset: dataOff, Link: -1}
	const maxData = 1 << 62 // keeps the arithmetic below from overflowing
	if data := e.Size(); data < 0 || data > maxData {
		return Entry{}, fmt.Errorf("%w: entry %q: size %d", ErrMalformed, h.Name, h.Size)
	}
	e.End = dataOff + (e.Size()+BlockSize-1)/BlockSize*BlockSize
	if s.size >= 0 && e.End > s.size {
		return Entry{}, fmt.Errorf("%w: entry %q needs %d bytes, the archive has %d", ErrTruncated, h.Name, e.End, s.size)
	}
	return e, nil
}

// validate checks name, uniqueness and link targets.
func (s *Scanner) validate(h *tar.Header, e *Entry) error {
	if len(h.Name) > s.l.NameLen || len(h.Linkname) > s.l.NameLen {
		return fmt.Errorf("%w %.64q…: name of %d bytes, over %d", ErrUnsafePath, h.Name, max(len(h.Name), len(h.Linkname)), s.l.NameLen)
	}
	name, err := cleanPath(h.Name)
	if err != nil {
		return err
	}
	if name == "." && h.Typeflag != tar.TypeDir {
		return fmt.Errorf("%w %q: empty name", ErrUnsafePath, h.Name)
	}
	if _, dup := s.names[name]; dup {
		return fmt.Errorf("%w %q", ErrDuplicate, h.Name)
	}
	e.Name = name
	switch h.Typeflag {
	case tar.TypeSymlink:
		return checkSymlink(name, h.Linkname)
	case tar.TypeLink:
		i, err := s.linkTarget(h)
		e.Link = i
		return err
	}
	return nil
}

// linkTarget returns the index of a hard link's target, which tar requires
// to be an earlier entry: extraction links to the file already written.
func (s *Scanner) linkTarget(h *tar.Header) (int, error) {
	target, err := cleanPath(h.Linkname)
	if err != nil {
		return -1, fmt.Errorf("%w: %q -> %q", ErrUnsafeLink, h.Name, h.Linkname)
	}
	i, ok := s.names[target]
	if !ok || s.entries[i].Header.Typeflag == tar.TypeDir {
		return -1, fmt.Errorf("%w: hard link %q -> %q: no earlier file of that name", ErrUnsafeLink, h.Name, h.Linkname)
	}
	return i, nil
}
