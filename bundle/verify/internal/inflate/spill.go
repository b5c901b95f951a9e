package inflate

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// A layerQueue carries one compressed layer from the tar reader to its
// inflater, in order. At most queueDepth chunks wait in memory. When those
// are full because the inflater is behind, and a worker slot is idle, the
// reader writes the chunk to a spill file instead of waiting: a tar stream
// cannot be read out of order, so waiting here would keep every later layer,
// and the idle slot, waiting for this one (wall time would be the sum of the
// layers' inflate times). The inflater reads memory and file chunks in the
// order they were queued. Spilled bytes count against the pool's budget
// until the layer is done and its file removed; over budget, the reader
// waits as it did before spilling existed.
type layerQueue struct {
	p       *Pool
	items   []qItem
	inMem   int  // items holding a memory chunk
	spill   bool // layers read by offset have nothing to gain from spilling
	closed  bool // the reader sent the last chunk
	err     error
	dead    bool // the inflater stopped and reads no more
	file    spillFile
	charged int64 // bytes of file counted against the budget

	// The inflater's current item; only its goroutine touches these.
	cur qItem
	pos int64
}

// qItem is a chunk in memory, or a run of bytes in the spill file.
type qItem struct {
	buf *[]byte
	n   int64
	off int64
}

func (p *Pool) newQueue(spill bool) *layerQueue {
	return &layerQueue{p: p, spill: spill, file: spillFile{dir: p.spillDir}}
}

// push queues buf[:n], which the queue owns from here. The caller is the
// tar reader.
func (q *layerQueue) push(buf *[]byte, n int) {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case q.dead || p.stopped != nil:
			PutChunk(buf)
			return
		case q.inMem < queueDepth:
			q.items = append(q.items, qItem{buf: buf, n: int64(n)})
			q.inMem++
			p.readable.Broadcast()
			return
		case q.spill && p.canSpill(int64(n)):
			if q.spillChunk((*buf)[:n]) {
				PutChunk(buf)
				return
			}
			// The write failed and turned spilling off. The lock was
			// dropped meanwhile, so look again before waiting.
		default:
			p.writable.Wait()
		}
	}
}

// spillChunk appends b to the spill file, reserving its budget first. It is
// called with p.mu held and drops it for the write, so the inflaters are
// not held up by disk I/O.
func (q *layerQueue) spillChunk(b []byte) bool {
	p := q.p
	n := int64(len(b))
	p.spilled += n
	p.mu.Unlock()
	off, err := q.file.append(b)
	p.mu.Lock()
	if err != nil {
		// A full or unwritable temp dir costs speed, not the verification.
		p.spilled -= n
		p.spillOff = true
		return false
	}
	q.charged += n
	p.stats.Total += n
	p.stats.Peak = max(p.stats.Peak, p.spilled)
	if last := len(q.items) - 1; last >= 0 && q.items[last].buf == nil && q.items[last].off+q.items[last].n == off {
		q.items[last].n += n // one run of file bytes, read in big pieces
	} else {
		q.items = append(q.items, qItem{off: off, n: n})
	}
	p.readable.Broadcast()
	return true
}

// close ends the layer; a non-nil err reaches the inflater after the last
// chunk, as the reason the layer is incomplete.
func (q *layerQueue) close(err error) {
	q.p.mu.Lock()
	q.closed, q.err = true, err
	q.p.readable.Broadcast()
	q.p.mu.Unlock()
}

// Read is the inflater's side.
func (q *layerQueue) Read(b []byte) (int, error) {
	if q.pos == q.cur.n {
		if err := q.next(); err != nil {
			return 0, err
		}
	}
	want := min(int64(len(b)), q.cur.n-q.pos)
	if q.cur.buf != nil {
		n := copy(b, (*q.cur.buf)[q.pos:q.pos+want])
		q.pos += int64(n)
		return n, nil
	}
	n, err := q.file.f.ReadAt(b[:want], q.cur.off+q.pos)
	q.pos += int64(n)
	if int64(n) < want {
		return n, q.p.ioFailure(fmt.Errorf("reading back a spilled layer: %w", OrUnexpectedEOF(err)))
	}
	return n, nil
}

// OrUnexpectedEOF is err, or io.ErrUnexpectedEOF when a read that had to
// fill its buffer ended (io.EOF) or stopped short without an error.
func OrUnexpectedEOF(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next waits for the next item, or the end of the layer.
func (q *layerQueue) next() error {
	q.release()
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.stopped != nil:
			return p.stopped
		case len(q.items) > 0:
			q.cur, q.pos = q.items[0], 0
			q.items[0] = qItem{}
			q.items = q.items[1:]
			if q.cur.buf != nil {
				q.inMem--
				p.writable.Broadcast()
			}
			return nil
		case q.closed && q.err != nil:
			return q.err
		case q.closed:
			return io.EOF
		default:
			p.readable.Wait()
		}
	}
}

func (q *layerQueue) release() {
	if q.cur.buf != nil {
		PutChunk(q.cur.buf)
	}
	q.cur, q.pos = qItem{}, 0
}

// finish is the inflater's last call, also when it stopped early (an
// error, a bomb). It frees what it did not read, waits until the reader has
// ended the layer, so nothing writes the spill file any more, then removes
// the file and gives its bytes back to the budget.
func (q *layerQueue) finish() {
	q.release()
	p := q.p
	p.mu.Lock()
	q.dead = true
	for _, it := range q.items {
		if it.buf != nil {
			PutChunk(it.buf)
		}
	}
	q.items, q.inMem = nil, 0
	p.writable.Broadcast()
	for !q.closed {
		p.readable.Wait()
	}
	p.mu.Unlock()
	q.file.remove()
	p.mu.Lock()
	p.spilled -= q.charged
	p.writable.Broadcast()
	p.mu.Unlock()
}

// UnlinkSpill is false in tests that check the files are removed by name,
// as they are where an open file cannot be unlinked.
var UnlinkSpill = true

// spillFile is one layer's temporary file, created on the first spill.
type spillFile struct {
	dir  string
	f    *os.File
	name string // set while the file still has a name to remove
	end  int64
}

func (s *spillFile) append(b []byte) (int64, error) {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "ferry-verify-*.spill")
		if err != nil {
			return 0, fmt.Errorf("spilling a layer: %w", err)
		}
		s.f, s.name = f, f.Name()
		// Unlinked at once where the OS allows (not Windows), so that not
		// even a killed process leaves it behind.
		if UnlinkSpill && os.Remove(s.name) == nil {
			s.name = ""
		}
	}
	off := s.end
	if _, err := s.f.WriteAt(b, off); err != nil {
		return 0, fmt.Errorf("spilling a layer: %w", err)
	}
	s.end += int64(len(b))
	return off, nil
}

// remove closes and deletes the file. Errors are ignored: the bytes were
// read back already, and there is nothing better to do with a temp file
// that will not go away.
func (s *spillFile) remove() {
	if s.f == nil {
		return
	}
	_ = s.f.Close()
	if s.name != "" {
		_ = os.Remove(s.name)
	}
	s.f = nil
}
