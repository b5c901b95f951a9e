package bundle

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"runtime"
	"sync"
)

// DefaultMaxSpill bounds the compressed layer bytes Verify keeps in temp
// files at once (see WithSpill): a few large layers, and far less than the
// archives it reads.
const DefaultMaxSpill = 2 << 30

// inflateBuf is the inflater's read buffer: spilled bytes are read back
// straight into it, so bigger means fewer system calls.
const inflateBuf = 64 << 10

// errStopped is what the workers see when the scan gave up on the archive:
// their results no longer matter, so they stop rather than finish a layer.
var errStopped = errors.New("verification stopped")

// spillStats say how much was spilled, for tests and profiling.
type spillStats struct {
	total, peak int64
}

// hashPool runs the workers: at most jobs layers are inflated (or, read by
// offset, hashed) at once. mu guards the queues and the spill budget;
// readable wakes inflaters waiting for bytes, writable the reader waiting
// for room.
type hashPool struct {
	sem   chan struct{}
	wg    sync.WaitGroup
	ratio int64

	mu         sync.Mutex
	readable   sync.Cond
	writable   sync.Cond
	spillDir   string
	maxSpill   int64
	spillSlots int
	spilled    int64
	stats      spillStats
	spillOff   bool  // a spill write failed; stay in memory from now on
	stopped    error // set when the workers should stop
	ioErr      error // the first local I/O failure (reading a spill back)
}

func newHashPool(o verifyOptions) *hashPool {
	p := &hashPool{sem: make(chan struct{}, o.jobs), ratio: o.maxExpansion, spillDir: o.spillDir, maxSpill: o.maxSpill,
		spillSlots: min(o.jobs, runtime.GOMAXPROCS(0))}
	p.readable.L, p.writable.L = &p.mu, &p.mu
	return p
}

// stopOn stops the workers when ctx is cancelled; call the result when done.
func (p *hashPool) stopOn(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { p.stop(context.Cause(ctx)) })
}

func (p *hashPool) stop(err error) {
	p.mu.Lock()
	if p.stopped == nil {
		p.stopped = err
	}
	p.readable.Broadcast()
	p.writable.Broadcast()
	p.mu.Unlock()
}

func (p *hashPool) wait() { p.wg.Wait() }

// halted says why a worker should stop reading, if it should.
func (p *hashPool) halted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// done reports the spill statistics and the first local I/O failure,
// once the pool is done.
func (p *hashPool) done() (spillStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats, p.ioErr
}

func (p *hashPool) ioFailure(err error) error {
	p.mu.Lock()
	if p.ioErr == nil {
		p.ioErr = err
	}
	p.mu.Unlock()
	return err
}

// canSpill is true when n more bytes fit the budget and spilling would let
// the reader start another worker on an idle core. With spillSlots layers
// inflating, the cores are busy: waiting then costs nothing, while a spill
// costs a write and a read (BenchmarkVerify/zstd/jobs=4 lost 4% to it).
// Called with mu held.
func (p *hashPool) canSpill(n int64) bool {
	return !p.spillOff && p.spilled+n <= p.maxSpill && len(p.sem) < p.spillSlots
}

func (p *hashPool) acquire() { p.sem <- struct{}{} }

// release frees a worker slot, and wakes the reader, which may now spill.
func (p *hashPool) release() {
	<-p.sem
	p.mu.Lock()
	p.writable.Broadcast()
	p.mu.Unlock()
}

// blobStream is the hashing side of one blob.
type blobStream struct {
	e      *vEntry
	kind   blobKind
	digest hash.Hash
	q      *layerQueue // nil unless a worker inflates the blob
}

// open starts hashing e, whose first bytes are head, for the tar reader.
// A compressed blob gets an inflater, waiting for a free slot.
func (p *hashPool) open(e *vEntry, head []byte) *blobStream {
	kind := sniffBlob(head[:min(len(head), sniffLen)])
	if kind != kindGzip && kind != kindZstd {
		return p.stream(e, kind, false)
	}
	p.acquire()
	return p.stream(e, kind, true)
}

// stream makes the blobStream; for a compressed blob it starts the
// inflater, which frees the caller's slot when done.
func (p *hashPool) stream(e *vEntry, kind blobKind, spill bool) *blobStream {
	s := &blobStream{e: e, kind: kind, digest: sha256.New()}
	if kind != kindGzip && kind != kindZstd {
		return s
	}
	s.q = p.newQueue(spill)
	limit := max(expansionFloor, e.size*max(p.ratio, 1))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.release()
		id, n, err := layerDiffID(bufio.NewReaderSize(s.q, inflateBuf), kind, limit)
		s.q.finish()
		e.diff = diffResult{id: id, err: err, expanded: n}
	}()
	return s
}

// send hashes buf and passes it on; the stream owns buf from here.
func (s *blobStream) send(buf *[]byte, n int) {
	s.digest.Write((*buf)[:n])
	if s.q == nil {
		putBlobChunk(buf)
		return
	}
	s.q.push(buf, n)
}

// end finishes the blob; a non-nil err means it is incomplete.
func (s *blobStream) end(err error) {
	if s.q != nil {
		s.q.close(err)
	}
	if err != nil {
		return
	}
	s.e.blob = blobHash{digest: sha256Of(s.digest), kind: s.kind}
	s.e.hashed = true
	if s.kind == kindTar {
		s.e.diff.id = s.e.blob.digest
	}
}
