package inflate

import (
	"bytes"
	"io"
	"os"
	"testing"
)

func testPool(t *testing.T, maxSpill int64) (*Pool, string) {
	dir := t.TempDir()
	t.Cleanup(func() { UnlinkSpill = true })
	UnlinkSpill = false
	return NewPool(Options{Jobs: 2, MaxSpill: maxSpill, SpillDir: dir}), dir
}

// pushChunks queues count chunks of distinct bytes, returning them all.
func pushChunks(q *layerQueue, count int) []byte {
	var all []byte
	for i := range count {
		buf := GetChunk()
		n := ChunkSize - i // uneven, so runs of file bytes do not align
		for j := range n {
			(*buf)[j] = byte(i*7 + j)
		}
		all = append(all, (*buf)[:n]...)
		q.push(buf, n)
	}
	return all
}

// TestLayerQueueOrder fills a queue with nobody reading: the first chunks
// stay in memory, the rest go to the spill file, and the reader gets them
// back in order, after which the file is gone and the budget whole.
func TestLayerQueueOrder(t *testing.T) {
	p, dir := testPool(t, 1<<30)
	q := p.newQueue(true)
	want := pushChunks(q, queueDepth+20)
	q.close(nil)
	if q.inMem != queueDepth || p.spilled == 0 {
		t.Fatalf("%d chunks in memory, %d bytes spilled", q.inMem, p.spilled)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("spill dir holds %v", es)
	}
	got, err := io.ReadAll(q)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (err %v), want %d", len(got), err, len(want))
	}
	q.finish()
	if es, _ := os.ReadDir(dir); len(es) != 0 || p.spilled != 0 {
		t.Fatalf("after finish: dir %v, %d bytes still charged", es, p.spilled)
	}
}

// TestLayerQueueEarlyStop: an inflater that gives up must not leave the
// reader blocked, nor the spill file behind.
func TestLayerQueueEarlyStop(t *testing.T) {
	p, dir := testPool(t, 4*ChunkSize)
	q := p.newQueue(true)
	pushChunks(q, queueDepth+4) // memory and budget now full
	done := make(chan struct{})
	go func() {
		defer close(done)
		pushChunks(q, 50) // blocks until the inflater stops
		q.close(io.ErrUnexpectedEOF)
	}()
	buf := make([]byte, 1000)
	if _, err := q.Read(buf); err != nil {
		t.Fatal(err)
	}
	q.finish()
	<-done
	if es, _ := os.ReadDir(dir); len(es) != 0 || p.spilled != 0 || p.stats.Peak == 0 || p.stats.Peak > 4*ChunkSize {
		t.Fatalf("after finish: dir %v, %d bytes charged, peak %d", es, p.spilled, p.stats.Peak)
	}
}

// TestLayerQueueStop: stopping the pool wakes both sides.
func TestLayerQueueStop(t *testing.T) {
	p, _ := testPool(t, 0)
	q := p.newQueue(true)
	pushChunks(q, queueDepth)
	done := make(chan error)
	go func() {
		_, err := io.ReadAll(q)
		done <- err
	}()
	go p.Stop(ErrStopped)
	pushChunks(q, 10)
	q.close(nil)
	if err := <-done; err != ErrStopped && err != nil {
		t.Fatalf("reader: %v", err)
	}
	q.finish()
}
