package reorder

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// writePlan is the one write loop for inputs that can be read by offset (a
// plain tar file or a spill file): every record is copied as the exact byte
// range it had, and every copy is checked against the size the plan expects.
func writePlan(ctx context.Context, w *output, src io.ReaderAt, p *plan, buf []byte) error {
	for i, r := range p.order {
		if i == p.meta {
			if err := w.endMetadata(p); err != nil {
				return err
			}
		}
		w.entry(r)
		if err := copyRange(ctx, w, src, r, buf); err != nil {
			return err
		}
	}
	return w.trailer()
}

// copyRange copies one record, checking ctx between chunks so that a
// cancelled reorder of a large layer stops promptly.
func copyRange(ctx context.Context, w io.Writer, src io.ReaderAt, r record, buf []byte) error {
	sr := io.NewSectionReader(src, r.off, r.size())
	var done int64
	for done < r.size() {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := buf[:min(int64(len(buf)), r.size()-done)]
		n, err := io.ReadFull(sr, chunk)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %q: input shrank at byte %d of %d", ErrChanged, r.name, done+int64(n), r.size())
			}
			return fmt.Errorf("reading %q: %w", r.name, err)
		}
		if _, err := w.Write(chunk); err != nil {
			return fmt.Errorf("writing %q: %w", r.name, err)
		}
		done += int64(n)
	}
	return nil
}

// Cutter is implemented by compressing writers that can end a frame where
// the stream has a seek table, such as bundle.Compressor. Reorder then cuts
// around each bulk entry's header and head and at its end, so a seekable
// reader decompresses an entry's header, or its data, alone.
type Cutter interface {
	Cut()
}

// output wraps the destination: it counts bytes, knows how to end the
// metadata frame, and cuts frames at entry boundaries.
type output struct {
	w     io.Writer
	frame FrameEnder
	cut   Cutter
	cuts  []int64 // output offsets still to cut at, ascending
	n     int64
}

func newOutput(dst io.Writer) *output {
	frame, _ := dst.(FrameEnder)
	cut, _ := dst.(Cutter)
	return &output{w: dst, frame: frame, cut: cut}
}

// entry is called as a record starts: a bulk record gets a frame for its
// header blocks and first HeadSize data bytes, then frames for the rest.
func (o *output) entry(r record) {
	if o.cut == nil || r.meta() {
		return
	}
	o.cut.Cut()
	head := r.data - r.off + min(HeadSize, r.end-r.data)
	o.cuts = append(o.cuts, o.n+head, o.n+r.size())
}

func (o *output) Write(p []byte) (int, error) {
	written := 0
	for len(o.cuts) > 0 && o.n+int64(len(p)) >= o.cuts[0] {
		k := o.cuts[0] - o.n
		n, err := o.w.Write(p[:k])
		written, o.n = written+n, o.n+int64(n)
		if err != nil {
			return written, err
		}
		p = p[k:]
		o.cut.Cut()
		o.cuts = o.cuts[1:]
	}
	n, err := o.w.Write(p)
	o.n += int64(n)
	return written + n, err
}

// endMetadata ends the compressed frame after the metadata so that it
// decodes on its own. With no metadata there is nothing to separate.
func (o *output) endMetadata(p *plan) error {
	if o.frame == nil || p.meta == 0 || p.meta == len(p.order) {
		return nil
	}
	if err := o.frame.EndFrame(); err != nil {
		return fmt.Errorf("ending metadata frame: %w", err)
	}
	return nil
}

// trailer writes the end-of-archive marker, two zero blocks, as archive/tar
// does. Any extra zero padding the input had (GNU tar pads to 10 KiB) is
// dropped so that output is the same whatever wrote the input.
func (o *output) trailer() error {
	var zero [2 * blockSize]byte
	_, err := o.Write(zero[:])
	return err
}
