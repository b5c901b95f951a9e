package registry

import (
	"context"
	"io"
	"os"
	"sync"
)

// growingFile is a cache entry being downloaded. Readers may follow it
// while it grows, so a bundle is written as its layers arrive rather than
// after. A retried download rewrites the same bytes (the content is
// addressed by digest), so what readers have already seen stays valid.
type growingFile struct {
	mu      sync.Mutex
	cond    *sync.Cond
	path    string // temp file until done, then the cache entry
	written int64  // bytes readers may read
	done    bool
	err     error
}

func newGrowingFile(path string) *growingFile {
	g := &growingFile{path: path}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// wrote publishes bytes up to off. Retries restart at 0; the published
// size only moves forward.
func (g *growingFile) wrote(off int64) {
	g.mu.Lock()
	if off > g.written {
		g.written = off
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// finish ends the download; rename, if given, runs under the lock, so a
// reader opens either the temp file or the final entry, never neither.
func (g *growingFile) finish(err error, rename func() (string, error)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil && rename != nil {
		g.path, err = rename()
	}
	g.done, g.err = true, err
	g.cond.Broadcast()
}

// open returns a reader of the whole blob that waits for bytes not yet
// downloaded and ends with the download's error, if any.
func (g *growingFile) open(ctx context.Context) (io.ReadCloser, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done && g.err != nil {
		return nil, g.err
	}
	f, err := os.Open(g.path)
	if err != nil {
		return nil, err
	}
	r := &followReader{g: g, f: f, ctx: ctx}
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	r.stop = stop
	return r, nil
}

type followReader struct {
	g    *growingFile
	f    *os.File
	ctx  context.Context
	off  int64
	stop func() bool
}

func (r *followReader) Read(p []byte) (int, error) {
	avail, err := r.wait()
	if avail == 0 {
		return 0, err
	}
	n, rerr := r.f.ReadAt(p[:min(int64(len(p)), avail)], r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// wait blocks until there are unread bytes, the download ended, or ctx is
// done. At the end it reports the download's error, so a blob that failed
// verification can never be read to a clean EOF.
func (r *followReader) wait() (int64, error) {
	g := r.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.written == r.off && !g.done && r.ctx.Err() == nil {
		g.cond.Wait()
	}
	switch {
	case g.written > r.off:
		return g.written - r.off, nil
	case r.ctx.Err() != nil:
		return 0, r.ctx.Err()
	case g.err != nil:
		return 0, g.err
	}
	return 0, io.EOF
}

func (r *followReader) Close() error {
	r.stop()
	return r.f.Close()
}
