package serve

import (
	"io"
	"sync"
)

// aheadBuffers is how many copy buffers a readAhead fills before its
// reader takes them.
const aheadBuffers = 2

// readAhead reads a blob on a goroutine of its own, a buffer ahead of its
// reader, so that decompressing a blob overlaps hashing and sending it: a
// single pull is otherwise one serial chain of the three.
type readAhead struct {
	src  io.ReadCloser
	full chan chunk
	free chan *[]byte
	stop chan struct{}
	done sync.WaitGroup

	cur  chunk
	off  int
	once sync.Once
}

// chunk is a filled buffer; err is what reading ended with, after the
// buffer's bytes.
type chunk struct {
	buf *[]byte
	n   int
	err error
}

func newReadAhead(src io.ReadCloser) *readAhead {
	ra := &readAhead{src: src, full: make(chan chunk, aheadBuffers), free: make(chan *[]byte, aheadBuffers+1), stop: make(chan struct{})}
	for range aheadBuffers + 1 {
		ra.free <- copyBuffers.Get().(*[]byte)
	}
	ra.done.Add(1)
	go ra.fill()
	return ra
}

func (ra *readAhead) fill() {
	defer ra.done.Done()
	for {
		var buf *[]byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := io.ReadFull(ra.src, *buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF // a short last buffer, not a short blob
		}
		select {
		case ra.full <- chunk{buf: buf, n: n, err: err}:
		case <-ra.stop:
			ra.free <- buf
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off == ra.cur.n {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf
		}
		ra.cur, ra.off = <-ra.full, 0
	}
	n := copy(p, (*ra.cur.buf)[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// Close stops the goroutine, waits for it to leave the source, and closes
// the source.
func (ra *readAhead) Close() error {
	var err error
	ra.once.Do(func() {
		close(ra.stop)
		ra.done.Wait()
		if ra.cur.buf != nil {
			copyBuffers.Put(ra.cur.buf)
		}
		for len(ra.full) > 0 {
			copyBuffers.Put((<-ra.full).buf)
		}
		for len(ra.free) > 0 {
			copyBuffers.Put(<-ra.free)
		}
		err = ra.src.Close()
	})
	return err
}
