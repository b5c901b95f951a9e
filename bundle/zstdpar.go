package bundle

import (
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
	pending []chan result
	workers int
	auto    *strongStream // nil when the user chose the level
	err     error
}

type result struct {
	out []byte
	in  []byte
}

// Buffers are recycled: a fresh buffer in and out per chunk would make the
// garbage collector, not compression, the cost, and double peak memory.
var (
	inPool  = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk); return &b }}
	outPool = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk+zstdChunk/64+1024); return &b }}
)

func newParallelZstd(dst io.Writer, level int) (*parallelZstd, error) {
	workers := runtime.GOMAXPROCS(0)
	opts := append(zstdOptions(level), zstd.WithEncoderConcurrency(workers), zstd.WithWindowSize(zstdChunk))
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, err
	}
	p := &parallelZstd{dst: dst, enc: enc, workers: workers, buf: getBuf(&inPool)}
	if level == 0 {
		if p.auto, err = newStrongStream(dst); err != nil {
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
	if !p.auto.open {
		p.drain() // frames are written in order
	}
	if p.err == nil {
		p.err = p.auto.write(p.buf, &p.table)
	}
	p.buf = p.buf[:0]
}

func (p *parallelZstd) endStrong() {
	if p.auto != nil && p.err == nil {
		p.err = p.auto.end(&p.table)
	}
}

// submit hands the current chunk to a worker, and writes finished frames
// once more than one per worker is in flight, bounding memory.
func (p *parallelZstd) submit() {
	if len(p.buf) == 0 {
		return
	}
	in := p.buf
	p.buf = getBuf(&inPool)
	ch := make(chan result, 1)
	go func() { ch <- result{out: p.enc.EncodeAll(in, getBuf(&outPool)), in: in} }()
	p.pending = append(p.pending, ch)
	for len(p.pending) > p.workers && p.err == nil {
		p.writeOldest()
	}
}

func (p *parallelZstd) writeOldest() {
	r := <-p.pending[0]
	p.pending = p.pending[1:]
	if p.err == nil {
		p.err = p.writeFrame(r)
	}
	putBuf(&inPool, r.in)
	putBuf(&outPool, r.out)
}

// drain writes every frame in flight.
func (p *parallelZstd) drain() {
	for len(p.pending) > 0 {
		p.writeOldest()
	}
}

// Flush ends the current frame and writes every frame so far.
func (p *parallelZstd) Flush() error {
	p.place()
	p.endStrong()
	p.drain()
	return p.err
}

// metadata marks the frames begun from now on as the metadata section's
// (see strongStream.encoder); call it between frames.
func (p *parallelZstd) metadata(on bool) {
	if p.auto != nil {
		p.auto.meta = on
	}
}

// writeFrame writes one compressed frame and enters it in the seek table.
func (p *parallelZstd) writeFrame(r result) error {
	if err := p.table.add(int64(len(r.out)), int64(len(r.in)), xxhash.Sum64(r.in)); err != nil {
		return err
	}
	_, err := p.dst.Write(r.out)
	return err
}

// Close writes the last frames, then the seek table: a skippable frame that
// every zstd decoder passes over, and that lets a seekable reader find each
// frame by its decompressed offset.
func (p *parallelZstd) Close() error {
	defer p.enc.Close()
	if p.auto != nil {
		defer p.auto.close()
	}
	if err := p.Flush(); err != nil {
		return err
	}
	table, err := p.table.frame()
	if err != nil {
		return err
	}
	_, err = p.dst.Write(table)
	return err
}
