package bundle

import (
	"encoding/binary"
	"io"
	"runtime"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// zstdChunk is how much input each independently compressed fast frame
// holds, and how much input compression by content judges at a time.
// Already-compressed layers gain nothing from a bigger window, and 2 MiB
// frames keep every worker busy and memory small (peak RSS of `ferry
// reorder` to zstd: 26 MB at 1 MiB, 37 MB at 2 MiB, 60 MB at 4 MiB; 1 MiB
// was slower in the same runs).
const zstdChunk = 2 << 20

// parallelZstd compresses fixed-size chunks as separate zstd frames on all
// cores, writing them in order. Chunk boundaries depend only on the input,
// so output is deterministic. Every zstd reader, including k3s's, reads
// concatenated frames as one stream. With auto set, chunks that compress
// go to one long-window stream instead (see zstdauto.go).
type parallelZstd struct {
	dst     io.Writer
	enc     *zstd.Encoder
	table   seekTable
	buf     []byte
	pending []chan struct{} // each closed once its frame is written
	workers int
	auto    *strongStream // nil when the user chose the level
	err     error         // the first error; only this goroutine's copy
	closed  bool          // by Close or Abort

	mu      sync.Mutex
	failure error // the first error of a worker writing a frame
}

// Buffers are recycled: a fresh buffer in and out per chunk would make the
// garbage collector, not compression, the cost, and double peak memory.
var (
	inPool  = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk); return &b }}
	outPool = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk+zstdChunk/64+1024); return &b }}
)

func newParallelZstd(dst io.Writer, level int, o options) (*parallelZstd, error) {
	workers := runtime.GOMAXPROCS(0)
	opts := append(zstdOptions(level), zstd.WithEncoderConcurrency(workers), zstd.WithWindowSize(zstdChunk))
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, err
	}
	p := &parallelZstd{dst: dst, enc: enc, workers: workers, buf: getBuf(&inPool)}
	if level == 0 {
		jobs := min(workers, maxStrongWorkers)
		if o.strongWorkers > 0 {
			jobs = o.strongWorkers
		}
		if p.auto, err = newStrongStream(dst, newStrongPar(o.spillDir, jobs)); err != nil {
			enc.Close()
			return nil, err
		}
	}
	return p, nil
}

func getBuf(p *sync.Pool) []byte { return (*p.Get().(*[]byte))[:0] }

func putBuf(p *sync.Pool, b []byte) { b = b[:0]; p.Put(&b) }

func (p *parallelZstd) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 && p.err == nil {
		k := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf = p.buf[:len(p.buf)+k]
		b, n = b[k:], n+k
		if len(p.buf) == cap(p.buf) {
			p.place()
		}
	}
	return n, p.err
}

// Cut ends the current frame, unless it is a long-window one: those span
// entries, because matches across layers are much of what they find.
func (p *parallelZstd) Cut() {
	if p.auto != nil && p.auto.open {
		return
	}
	p.place()
}

// place hands the buffered input to a fast frame or to the long-window
// stream, by its content.
func (p *parallelZstd) place() {
	if len(p.buf) == 0 || p.err != nil {
		return
	}
	if p.auto == nil || !p.auto.wants(p.buf) {
		p.endStrong()
		p.submit()
		return
	}
	begin := p.beginJob
	if !p.auto.parallel() {
		begin = p.auto.begin
		if !p.auto.open {
			p.drain() // an inline frame is written as it is compressed
		}
	}
	if p.err == nil {
		p.err = p.auto.write(p.buf, &p.table, begin)
	}
	p.buf = p.buf[:0]
}

func (p *parallelZstd) endStrong() {
	if p.auto != nil && p.err == nil {
		p.err = p.auto.end(&p.table)
	}
}

// submit hands the current chunk to a worker, which compresses it, waits
// for the frame before it to be written, and writes its own: frames go out
// in order without this goroutine, which reads the input, copying them.
// Once more than one frame per worker is in flight it waits for the
// oldest, bounding memory.
func (p *parallelZstd) submit() {
	if len(p.buf) == 0 {
		return
	}
	in := p.buf
	p.buf = getBuf(&inPool)
	var prev chan struct{}
	if n := len(p.pending); n > 0 {
		prev = p.pending[n-1]
	}
	done := make(chan struct{})
	go p.compress(in, prev, done)
	p.pending = append(p.pending, done)
	for len(p.pending) > p.workers && p.err == nil {
		p.waitOldest()
	}
}

func (p *parallelZstd) compress(in []byte, prev, done chan struct{}) {
	defer close(done)
	out := p.enc.EncodeAll(in, getBuf(&outPool))
	sum := frameChecksum(out, in)
	if prev != nil {
		<-prev
	}
	p.mu.Lock()
	if p.failure == nil {
		p.failure = p.writeFrame(out, len(in), sum)
	}
	p.mu.Unlock()
	putBuf(&inPool, in)
	putBuf(&outPool, out)
}

func (p *parallelZstd) waitOldest() {
	<-p.pending[0]
	p.pending = p.pending[1:]
	if p.err == nil {
		p.mu.Lock()
		p.err = p.failure
		p.mu.Unlock()
	}
}

// drain waits until every frame in flight is written.
func (p *parallelZstd) drain() {
	for len(p.pending) > 0 {
		p.waitOldest()
	}
}

// Flush ends the current frame and writes every frame so far. After an
// error a long-window frame may be left open, its job waiting for input:
// only Abort ends it.
func (p *parallelZstd) Flush() error {
	p.place()
	p.endStrong()
	if p.err != nil {
		return p.err
	}
	p.drain()
	return p.err
}

// metadata marks the frames begun from now on as the metadata section's
// (see strongStream.encoder); call it between frames.
func (p *parallelZstd) metadata(on bool) {
	if p.auto != nil {
		p.auto.setMeta(on)
	}
}

// writeFrame writes one compressed frame and enters it in the seek table.
// Workers call it in frame order, one at a time.
func (p *parallelZstd) writeFrame(frame []byte, size int, sum uint32) error {
	if err := p.table.add(int64(len(frame)), int64(size), uint64(sum)); err != nil {
		return err
	}
	_, err := p.dst.Write(frame)
	return err
}

// frameChecksum is the seek table's checksum of one frame's content: the
// low 32 bits of its XXH64. A frame written with a content checksum ends
// with exactly that value (zstd format, and the seekable format defines its
// checksum the same way), which the encoder has already computed in the
// worker; reading it back saves a second pass over the data.
func frameChecksum(frame, content []byte) uint32 {
	if len(frame) > 8 && frame[4]&0x04 != 0 { // Content_Checksum_flag
		return binary.LittleEndian.Uint32(frame[len(frame)-4:])
	}
	return uint32(xxhash.Sum64(content))
}

// Close writes the last frames, then the seek table: a skippable frame that
// every zstd decoder passes over, and that lets a seekable reader find each
// frame by its decompressed offset.
func (p *parallelZstd) Close() error {
	if p.closed {
		return p.err
	}
	err := p.Flush()
	var table []byte
	if err == nil {
		table, err = p.table.frame()
	}
	if err == nil {
		_, err = p.dst.Write(table)
	}
	if err != nil {
		p.Abort()
		return err
	}
	p.release()
	return nil
}

// Abort stops compressing, leaving the stream unfinished: the jobs of
// long-window frames stop where they are, frames in flight are dropped and
// every encoder and spill file is released.
func (p *parallelZstd) Abort() {
	if p.closed {
		return
	}
	if p.auto != nil && p.auto.par != nil {
		p.auto.job, p.auto.open = nil, false
		p.auto.par.stop()
	}
	p.drain()
	if p.err == nil {
		p.err = errAborted
	}
	p.release()
}

func (p *parallelZstd) release() {
	p.closed = true
	p.enc.Close()
	if p.auto != nil {
		p.auto.close()
	}
}
