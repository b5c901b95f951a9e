package reorder

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/rancher/ferry/reorder/tempfile"
)

// spillPattern names spill files; Sweep removes those of killed runs.
const spillPattern = ".ferry-reorder-*.tar"

// reorderSpill copies the stream to a temporary file while indexing it, then
// writes the plan from that file. The spill is the raw tar stream, so the
// plan's offsets apply to it unchanged.
func reorderSpill(ctx context.Context, o *options, out *output, src io.Reader) (p *plan, err error) {
	dir := o.spillDir
	if dir == "" {
		dir = os.TempDir()
	}
	_, _ = tempfile.Sweep(dir, spillPattern)
	f, err := tempfile.Create(dir, spillPattern)
	if err != nil {
		return nil, fmt.Errorf("creating spill file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	bw := bufio.NewWriterSize(f, o.bufSize)
	s := newScanner(o, io.TeeReader(src, bw), -1)
	buf := make([]byte, o.bufSize)
	if err := scanAll(ctx, s, buf); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing spill file: %w", err)
	}
	p = makePlan(s.recs)
	return p, writePlan(ctx, out, f, p, buf)
}
