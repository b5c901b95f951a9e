package reorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// router sits below tar.Reader when a stream is read twice. tar.Reader has
// consumed an entry's header blocks before anyone can tell whether the entry
// is wanted, so bytes past the current entry's end wait in pending until
// claim decides where that entry goes.
type router struct {
	r       io.Reader
	pos     int64
	end     int64     // bytes before end belong to the current entry
	dst     io.Writer // its destination; nil drops them
	pending []byte    // bytes from end onwards, not yet claimed
	max     int64
}

// newRouter reads r; what waits unclaimed is at most one entry's header
// blocks and head, or the end-of-archive marker.
func newRouter(r io.Reader, o *options) *router {
	return &router{r: r, max: o.limits.HeaderBytes + HeadSize}
}

func (t *router) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if rerr := t.route(p[:n]); rerr != nil {
			return n, rerr
		}
	}
	return n, err
}

func (t *router) route(b []byte) error {
	if t.pos < t.end {
		k := min(int64(len(b)), t.end-t.pos)
		if t.dst != nil {
			if _, err := t.dst.Write(b[:k]); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		t.pos += k
		b = b[k:]
	}
	if len(b) == 0 {
		return nil
	}
	// Only header blocks, a head and the trailer ever wait here; tar.Reader
	// caps each PAX or long-name record at 1 MiB but not how many come in a
	// row, and the scanner checks the header size only once it has it all.
	if int64(len(t.pending)+len(b)) > t.max {
		return fmt.Errorf("%w: more than %d header bytes before an entry", ErrLimit, t.max)
	}
	t.pending = append(t.pending, b...)
	t.pos += int64(len(b))
	return nil
}

// claim sends the entry that starts at the old end to dst: what was read of
// it already at once, the rest as tar.Reader reads it.
func (t *router) claim(r record, dst io.Writer) error {
	if dst != nil {
		if _, err := dst.Write(t.pending); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	t.pending = t.pending[:0]
	t.end, t.dst = r.end, dst
	return nil
}

// reorderReread reads the stream once to index it and keep the metadata
// entries in memory, writes them, then reads it again and copies the bulk.
func reorderReread(ctx context.Context, o *options, out *output, src io.Reader) (*plan, error) {
	buf := make([]byte, o.bufSize)
	recs, meta, err := rereadFirst(ctx, o, src, buf)
	if err != nil {
		return nil, err
	}
	p := makePlan(recs)
	for _, r := range p.order[:p.meta] {
		if _, err := out.Write(meta[r.idx]); err != nil {
			return nil, fmt.Errorf("writing %q: %w", r.name, err)
		}
	}
	if err := out.endMetadata(p); err != nil {
		return nil, err
	}
	if err := rereadSecond(ctx, o, out, recs, buf); err != nil {
		return nil, err
	}
	return p, out.trailer()
}

// rereadFirst indexes src and returns the bytes of its metadata entries by
// record index. They are collected back to back in one arena; each entry's
// slice is cut out once the whole stream has been read and checked.
func rereadFirst(ctx context.Context, o *options, src io.Reader, buf []byte) ([]record, map[int][]byte, error) {
	rt := newRouter(src, o)
	s := newScanner(o, rt, -1)
	var arena bytes.Buffer
	var held int64
	for {
		rec, err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		// The scanner has checked the metadata against its limit.
		var dst io.Writer
		if rec.meta() {
			held += rec.size()
			dst = &arena
		}
		if err := rt.claim(rec, dst); err != nil {
			return nil, nil, err
		}
		if err := s.drain(ctx, buf); err != nil {
			return nil, nil, err
		}
	}
	if int64(arena.Len()) != held {
		return nil, nil, fmt.Errorf("%w: read %d metadata bytes, expected %d", ErrMalformed, arena.Len(), held)
	}
	meta := make(map[int][]byte)
	b := arena.Bytes()
	for _, r := range s.recs {
		if r.meta() {
			meta[r.idx], b = b[:r.size()], b[r.size():]
		}
	}
	return s.recs, meta, nil
}

// rereadSecond reads the stream again and copies its bulk entries, checking
// that it is the stream the plan was made from.
func rereadSecond(ctx context.Context, o *options, out *output, want []record, buf []byte) error {
	rc, err := o.reopen()
	if err != nil {
		return fmt.Errorf("reopening input: %w", err)
	}
	if rc == nil {
		return fmt.Errorf("%w: reopening input gave no reader", ErrInvalidArgument)
	}
	defer rc.Close()
	rt := newRouter(rc, o)
	s := newScanner(o, rt, -1)
	for i := 0; ; i++ {
		rec, err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			if i != len(want) {
				return fmt.Errorf("%w: %d entries, first read had %d", ErrChanged, i, len(want))
			}
			// tar.Reader has read the last entry's padding by now.
			return nil
		}
		if err != nil {
			return err
		}
		if i >= len(want) || rec != want[i] {
			return fmt.Errorf("%w: entry %d (%q)", ErrChanged, i, rec.name)
		}
		var dst io.Writer
		if !rec.meta() {
			dst = out
			out.entry(rec)
		}
		if err := rt.claim(rec, dst); err != nil {
			return err
		}
		if err := s.drain(ctx, buf); err != nil {
			return err
		}
	}
}
