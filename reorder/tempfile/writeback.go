package tempfile

import (
	"errors"
	"io"
	"sync"
)

// Writeback window: each writeChunk bytes written are handed to a goroutine
// that starts writing them to disk and, writeLag chunks later, waits for
// them to be there and drops them from the page cache; every flushEvery
// bytes settled it makes them durable, so that durability costs time
// while the writer works rather than all at the end. Up to writeQueue
// chunks may wait for it, so a disk busy with other writers slows the
// writer only once it is that far behind. The file's dirty pages stay
// within about (writeQueue+writeLag+1)*writeChunk however large it grows.
const (
	writeChunk = 8 << 20
	writeLag   = 4
	writeQueue = 32
	// flushEvery settled bytes, the settled data is made durable
	// (fdatasync), in this goroutine, so that the final fsync does not
	// wait for the disk's cache to take the whole file at once.
	flushEvery = 64 << 20
)

// ranger is what writeback asks of the system for one byte range of the
// file: start writing it to disk, and wait for it to be there and drop it
// from the page cache. errUnsupported from either turns writeback off.
type ranger interface {
	start(off, n int64) error
	settle(off, n int64) error
	flush() error
}

// errUnsupported is a ranger's answer where the file system or the OS has no
// range writeback; the final fsync then does all of it, as without writeback.
var errUnsupported = errors.New("range writeback not supported")

// writeback passes writes to w and hands finished ranges of them to a
// ranger, so that a multi-GiB output is written to disk as it is produced
// instead of sitting in the page cache as dirty pages until the final
// fsync, which would then flush them all at once. close must be called
// before the file is synced or closed.
type writeback struct {
	w      io.Writer
	n      int64 // bytes written
	queued int64 // [0, queued) handed to the goroutine
	ranges chan int64
	done   chan struct{}
	mu     sync.Mutex
	err    error // the goroutine's first error
}

func newWriteback(w io.Writer, r ranger) *writeback {
	b := &writeback{w: w, ranges: make(chan int64, writeQueue), done: make(chan struct{})}
	go b.run(r)
	return b
}

func (b *writeback) Write(p []byte) (int, error) {
	if err := b.failed(); err != nil {
		return 0, err
	}
	n, err := b.w.Write(p)
	b.n += int64(n)
	for b.n-b.queued >= writeChunk {
		b.ranges <- b.queued
		b.queued += writeChunk
	}
	return n, err
}

// close stops the goroutine once it has handled every range queued, and
// returns its error. What was not queued is left to the caller's fsync.
func (b *writeback) close() error {
	close(b.ranges)
	<-b.done
	return b.failed()
}

func (b *writeback) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// run starts writeback of each chunk as it arrives and settles the chunk
// writeLag behind it, then the rest at the end. After an error it only
// drains the queue, so that Write never blocks on a goroutine that stopped.
func (b *writeback) run(r ranger) {
	defer close(b.done)
	var inflight []int64
	var unflushed int64
	fail := func(err error) {
		if errors.Is(err, errUnsupported) {
			err = nil
		}
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
		r = nil
	}
	for off := range b.ranges {
		if r == nil {
			continue
		}
		if err := r.start(off, writeChunk); err != nil {
			fail(err)
			continue
		}
		inflight = append(inflight, off)
		if len(inflight) > writeLag {
			if err := r.settle(inflight[0], writeChunk); err != nil {
				fail(err)
				continue
			}
			inflight = inflight[1:]
			if unflushed += writeChunk; unflushed >= flushEvery {
				unflushed = 0
				if err := r.flush(); err != nil {
					fail(err)
				}
			}
		}
	}
	for _, off := range inflight {
		if r == nil {
			return
		}
		if err := r.settle(off, writeChunk); err != nil {
			fail(err)
		}
	}
}
