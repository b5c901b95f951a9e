package inflate

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"runtime"
	"sync"
)

// DefaultMaxSpill bounds the compressed layer bytes kept in temp files at
// once: a few large layers, and far less than the archives being read.
const DefaultMaxSpill = 2 << 30

// Options configure a Pool.
type Options struct {
	DigestsOnly  bool   // hash blobs only: inflate nothing, learn no diff_ids
	Jobs         int    // layers inflated (or hashed by offset) at once; at least 1
	MaxExpansion int64  // a layer may expand to max(256 MiB, MaxExpansion × its size)
	SpillDir     string // where layers that fall behind are spilled ("" is os.TempDir())
	MaxSpill     int64  // bytes that may be spilled at once; 0 never spills
}

// inflateBuf is the inflater's read buffer: spilled bytes are read back
// straight into it, so bigger means fewer system calls.
const inflateBuf = 64 << 10

// ErrStopped is what the workers see when the caller gave up on the
// archive: their results no longer matter, so they stop rather than finish
// a layer.
var ErrStopped = errors.New("verification stopped")

// Stats say how much was spilled, in all and at most at once, for tests and
// profiling.
type Stats struct {
	Total, Peak int64
}

// Pool runs the workers: at most jobs layers are inflated (or, read by
// offset, hashed) at once. mu guards the queues and the spill budget;
// readable wakes inflaters waiting for bytes, writable the reader waiting
// for room.
type Pool struct {
	sem     chan struct{}
	wg      sync.WaitGroup
	ratio   int64
	digests bool // see Options.DigestsOnly

	mu         sync.Mutex
	readable   sync.Cond
	writable   sync.Cond
	spillDir   string
	maxSpill   int64
	spillSlots int
	spilled    int64
	stats      Stats
	spillOff   bool  // a spill write failed; stay in memory from now on
	stopped    error // set when the workers should stop
	ioErr      error // the first local I/O failure (reading a spill back)
}

// NewPool returns a pool for one archive.
func NewPool(o Options) *Pool {
	o.Jobs = max(o.Jobs, 1)
	p := &Pool{sem: make(chan struct{}, o.Jobs), ratio: o.MaxExpansion, digests: o.DigestsOnly, spillDir: o.SpillDir, maxSpill: o.MaxSpill,
		spillSlots: min(o.Jobs, runtime.GOMAXPROCS(0))}
	p.readable.L, p.writable.L = &p.mu, &p.mu
	return p
}

// StopOn stops the workers when ctx is cancelled; call the result when done.
func (p *Pool) StopOn(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { p.Stop(context.Cause(ctx)) })
}

// Stop makes the workers stop with err.
func (p *Pool) Stop(err error) {
	p.mu.Lock()
	if p.stopped == nil {
		p.stopped = err
	}
	p.readable.Broadcast()
	p.writable.Broadcast()
	p.mu.Unlock()
}

// Wait waits for every worker to finish.
func (p *Pool) Wait() { p.wg.Wait() }

// halted says why a worker should stop reading, if it should.
func (p *Pool) halted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Done reports the spill statistics and the first local I/O failure,
// once the pool is done.
func (p *Pool) Done() (Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats, p.ioErr
}

func (p *Pool) ioFailure(err error) error {
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
// costs a write and a read.
// Called with mu held.
func (p *Pool) canSpill(n int64) bool {
	return !p.spillOff && p.spilled+n <= p.maxSpill && len(p.sem) < p.spillSlots
}

func (p *Pool) acquire() { p.sem <- struct{}{} }

// release frees a worker slot, and wakes the reader, which may now spill.
func (p *Pool) release() {
	<-p.sem
	p.mu.Lock()
	p.writable.Broadcast()
	p.mu.Unlock()
}

// Stream is the hashing side of one blob.
type Stream struct {
	res    *Result
	size   int64
	kind   Kind
	digest hash.Hash
	q      *layerQueue // nil unless a worker inflates the blob
}

// Open starts hashing a blob of size bytes, whose first bytes are head,
// for the tar reader, which sends the blob's chunks to the Stream. A
// compressed blob gets an inflater, waiting for a free slot. What is learnt
// goes to res, which may be read once the pool is done (Wait).
func (p *Pool) Open(res *Result, size int64, head []byte) *Stream {
	kind := Sniff(head[:min(len(head), SniffLen)])
	if !p.inflates(kind) {
		return p.stream(res, size, kind, false)
	}
	p.acquire()
	return p.stream(res, size, kind, true)
}

// stream makes the Stream; for a compressed blob it starts the
// inflater, which frees the caller's slot when done.
func (p *Pool) stream(res *Result, size int64, kind Kind, spill bool) *Stream {
	s := &Stream{res: res, size: size, kind: kind, digest: sha256.New()}
	if !p.inflates(kind) {
		return s
	}
	s.q = p.newQueue(spill)
	limit := max(expansionFloor, size*max(p.ratio, 1))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.release()
		in, done := inflateInput(s.q)
		id, n, err := layerDiffID(in, kind, limit, true)
		s.q.finish()
		done()
		res.Diff = Diff{ID: id, Err: err, Expanded: n}
	}()
	return s
}

// inflates says whether a blob of kind gets an inflater.
func (p *Pool) inflates(kind Kind) bool {
	return !p.digests && (kind == KindGzip || kind == KindZstd)
}

// Send hashes (*buf)[:n] and passes it on; the stream owns buf, which
// came from GetChunk, from here.
func (s *Stream) Send(buf *[]byte, n int) {
	s.digest.Write((*buf)[:n])
	if s.q == nil {
		PutChunk(buf)
		return
	}
	s.q.push(buf, n)
}

// End finishes the blob; a non-nil err means it is incomplete.
func (s *Stream) End(err error) {
	if s.q != nil {
		s.q.close(err)
	}
	if err != nil {
		return
	}
	s.res.Blob = Blob{Digest: sha256Of(s.digest), Kind: s.kind}
	s.res.Hashed = true
	if s.kind == KindTar {
		s.res.Diff.ID = s.res.Blob.Digest
	}
}
