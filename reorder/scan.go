package reorder

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rancher/ferry/reorder/tarscan"
)

// blockSize is tar's unit: headers, data padding and the end marker.
const blockSize = tarscan.BlockSize

// record is what the plan keeps per entry: its byte range in the stream
// (header blocks through padding) and its rank.
type record struct {
	name string // canonical, for error messages and the second pass
	idx  int    // position in the input
	off  int64  // first header block (PAX and GNU long-name blocks included)
	data int64  // first data byte
	end  int64  // first byte after the data's padding
	rank int    // effective rank, clamped to Bulk
}

func (r record) size() int64 { return r.end - r.off }

func (r record) meta() bool { return r.rank < Bulk }

// scanner ranks the entries a tarscan.Scanner has validated. Validation,
// byte ranges and limits are tarscan's, so reorder accepts exactly what
// ferry's other readers accept.
type scanner struct {
	o    *options
	ts   *tarscan.Scanner
	recs []record
	head []byte
}

// newScanner reads the tar stream r of size bytes (-1 when unknown). When r
// is an io.ReadSeeker, data nobody reads is skipped by seeking.
func newScanner(o *options, r io.Reader, size int64) *scanner {
	return &scanner{o: o, ts: tarscan.NewScanner(r, size, o.limits), head: make([]byte, HeadSize)}
}

// next reads, validates and ranks the next entry. It returns io.EOF at a
// proper end of archive. The entry's data past its head is left for the
// scanner to skip or for the caller to drain.
func (s *scanner) next(ctx context.Context) (record, error) {
	e, err := s.ts.Next(ctx)
	if err != nil {
		return record{}, err
	}
	head, err := s.readHead(e)
	if err != nil {
		return record{}, err
	}
	rec := record{name: e.Name, idx: e.Index, off: e.Offset, data: e.DataOffset, end: e.End, rank: s.rank(e, head)}
	// Metadata is charged to tarscan's budget whichever way the input is
	// read, so that every strategy, and every other ferry reader, gives the
	// same verdict, and the reread strategy, which holds it, stays bounded.
	if rec.meta() {
		if err := s.ts.Charge(); err != nil {
			return record{}, err
		}
	}
	s.recs = append(s.recs, rec)
	return rec, nil
}

// readHead reads the first bytes of a regular file for the RankFunc.
func (s *scanner) readHead(e *tarscan.Entry) ([]byte, error) {
	n := int(min(e.Size(), HeadSize))
	if n == 0 {
		return nil, nil
	}
	if _, err := io.ReadFull(s.ts, s.head[:n]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: inside %q: %w", ErrTruncated, e.Name, err)
		}
		return nil, err
	}
	return s.head[:n], nil
}

// rank asks the RankFunc, clamps to Bulk and keeps hard links behind their
// targets, so that a stable sort never moves a link ahead of its file.
func (s *scanner) rank(e *tarscan.Entry, head []byte) int {
	r := min(s.o.rank(e.Header, head), Bulk)
	if e.Link >= 0 {
		r = max(r, s.recs[e.Link].rank)
	}
	return r
}

// drain reads the rest of the current entry's data with a large buffer, so
// whatever sits below the scanner (a spill file, a router) sees big writes
// instead of tar.Reader's small internal skips.
func (s *scanner) drain(ctx context.Context, buf []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := s.ts.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// scanAll indexes every entry; with a buffer it also drains each entry's
// data (streaming inputs), else the scanner skips it.
func scanAll(ctx context.Context, s *scanner, buf []byte) error {
	for {
		_, err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if buf != nil {
			if err := s.drain(ctx, buf); err != nil {
				return err
			}
		}
	}
}
