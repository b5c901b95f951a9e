package inflate

import (
	"bufio"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
)

// freeList keeps up to cap(ch) idle values across garbage collections,
// which a sync.Pool drops. A verification then allocates its buffers and
// decoders in its first layers and reuses them to the last: its heap stays
// the same size however large the archive, and so does its RSS, where
// reallocating them after each collection made both creep up with the
// archive's size.
type freeList[T any] struct{ ch chan T }

func newFreeList[T any](n int) freeList[T] { return freeList[T]{ch: make(chan T, n)} }

// get returns an idle value, or false.
func (f freeList[T]) get() (T, bool) {
	select {
	case v := <-f.ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

// put keeps v if there is room; otherwise it is left to the collector.
func (f freeList[T]) put(v T) {
	select {
	case f.ch <- v:
	default:
	}
}

// Enough for the chunks in flight at the default jobs on a few cores (see
// the bound in hash.go), and one decoder of each kind per job.
var (
	freeChunks  = newFreeList[*[]byte](64)
	freeGzip    = newFreeList[*gzip.Reader](8)
	freeZstd    = newFreeList[*zstd.Decoder](8)
	freeBuffers = newFreeList[*bufio.Reader](8)
)

// GetChunk returns a buffer of ChunkSize bytes.
func GetChunk() *[]byte {
	if b, ok := freeChunks.get(); ok {
		return b
	}
	b := make([]byte, ChunkSize)
	return &b
}

// PutChunk gives a buffer from GetChunk back.
func PutChunk(b *[]byte) { freeChunks.put(b) }

// inflater returns a reader of the layer r holds, and a func that gives
// its decoder back once the layer is done.
func inflater(r io.Reader, kind Kind) (io.Reader, func(), error) {
	switch kind {
	case KindGzip:
		gr, ok := freeGzip.get()
		var err error
		if ok {
			err = gr.Reset(r)
		} else {
			gr, err = gzip.NewReader(r)
		}
		if err != nil {
			return nil, nil, err
		}
		return gr, func() { freeGzip.put(gr) }, nil
	case KindZstd:
		d, ok := freeZstd.get()
		var err error
		if ok {
			err = d.Reset(r)
		} else {
			d, err = zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(bundle.MaxZstdWindow), zstd.WithDecoderMaxMemory(bundle.MaxZstdWindow))
		}
		if err != nil {
			return nil, nil, err
		}
		return d, func() { _ = d.Reset(nil); freeZstd.put(d) }, nil
	}
	return r, func() {}, nil
}

// inflateInput buffers what the inflater reads from a queue.
func inflateInput(r io.Reader) (*bufio.Reader, func()) {
	br, ok := freeBuffers.get()
	if ok {
		br.Reset(r)
	} else {
		br = bufio.NewReaderSize(r, inflateBuf)
	}
	return br, func() { br.Reset(nil); freeBuffers.put(br) }
}
