package reorder

import (
	"context"
	"fmt"
	"io"
)

// Strategy names how Reorder read its input.
type Strategy string

const (
	// Indexed: a seekable input, indexed through its headers and then
	// copied by offset. No temporary file, one read of the data.
	Indexed Strategy = "indexed"
	// Reread: a stream read twice (WithReopen), holding only the metadata
	// in memory between the passes.
	Reread Strategy = "reread"
	// Spill: a stream copied to a temporary file while being indexed, then
	// copied by offset from there.
	Spill Strategy = "spill"
)

// Result describes a finished reorder.
type Result struct {
	Entries       int   // entries in the archive
	Metadata      int   // entries ranked below Bulk, now at the front
	MetadataBytes int64 // bytes those entries take in the tar stream
	Bytes         int64 // tar bytes written, end-of-archive marker included
	// WasOrdered is true when the input already had the output's entry
	// order; the output may still differ in its compression or trailer.
	WasOrdered bool
	Strategy   Strategy
	// Compression is the output's compression as File's Codec names it;
	// Reorder leaves it empty.
	Compression string
}

// Reorder copies the tar stream src to dst with metadata entries first, as
// ranked by WithRank, and every entry byte for byte as it was.
//
// If src is seekable (an *os.File of a plain tar, a *bytes.Reader, an
// *io.SectionReader) it is read from its current offset by position.
// Otherwise it is read once and reread via WithReopen, or spilled to a
// temporary file. Either way memory use does not grow with entry sizes.
//
// If dst implements FrameEnder, its EndFrame is called once, right after
// the metadata. Reorder does not close dst. On error dst holds a partial
// stream: use File, write through bundle.WriteFileAtomic, or discard it.
func Reorder(ctx context.Context, dst io.Writer, src io.Reader, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if dst == nil || src == nil {
		return nil, fmt.Errorf("%w: Reorder needs a source and a destination", ErrInvalidArgument)
	}
	return reorder(ctx, o, dst, src)
}

func reorder(ctx context.Context, o *options, dst io.Writer, src io.Reader) (*Result, error) {
	out := newOutput(dst)
	var (
		p   *plan
		st  Strategy
		err error
	)
	if ra, size, ok := seekable(src); ok {
		st = Indexed
		p, err = reorderIndexed(ctx, o, out, ra, size)
	} else if o.reopen != nil {
		st = Reread
		p, err = reorderReread(ctx, o, out, src)
	} else {
		st = Spill
		p, err = reorderSpill(ctx, o, out, src)
	}
	if err != nil {
		return nil, err
	}
	return &Result{
		Entries:       len(p.order),
		Metadata:      p.meta,
		MetadataBytes: p.metaBytes,
		Bytes:         out.n,
		WasOrdered:    p.ordered,
		Strategy:      st,
	}, nil
}

// seekable returns src as a reader by offset, from its current position to
// its end. Stdin and pipes are *os.File too, but their Seek fails.
func seekable(src io.Reader) (io.ReaderAt, int64, bool) {
	rs, ok := src.(interface {
		io.ReaderAt
		io.Seeker
	})
	if !ok {
		return nil, 0, false
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, false
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, false
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil || end < start {
		return nil, 0, false
	}
	return io.NewSectionReader(rs, start, end-start), end - start, true
}

// reorderIndexed scans headers (the scanner seeks over the data), then copies.
func reorderIndexed(ctx context.Context, o *options, out *output, ra io.ReaderAt, size int64) (*plan, error) {
	s := newScanner(o, io.NewSectionReader(ra, 0, size), size)
	if err := scanAll(ctx, s, nil); err != nil {
		return nil, err
	}
	p := makePlan(s.recs)
	return p, writePlan(ctx, out, ra, p, make([]byte, o.bufSize))
}
