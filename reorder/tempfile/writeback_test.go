package tempfile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// fakeRanger records the ranges writeback hands it and fails on request.
type fakeRanger struct {
	mu               sync.Mutex
	started, settled []int64
	flushed          []int // len(settled) at each flush
	failStart        int64 // fail start of the range at this offset (-1: never)
	failFlush        error // every flush's answer
	err              error
}

func (f *fakeRanger) start(off, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n != writeChunk {
		panic("range of the wrong size")
	}
	if off == f.failStart {
		return f.err
	}
	f.started = append(f.started, off)
	return nil
}

func (f *fakeRanger) settle(off, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settled = append(f.settled, off)
	return nil
}

func (f *fakeRanger) flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushed = append(f.flushed, len(f.settled))
	return f.failFlush
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

// writeInPieces writes data to w in pieces of varying sizes, as a
// compressor would, and returns the first error.
func writeInPieces(w io.Writer, data []byte) error {
	rnd := rand.New(rand.NewPCG(1, 2))
	for len(data) > 0 {
		n := min(len(data), 1+rnd.IntN(3<<20))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// Every byte reaches the file unchanged, every whole chunk is started and
// settled once, in order, and the tail is left to the final fsync.
func TestWritebackPassesBytesAndRanges(t *testing.T) {
	data := randomBytes(11*writeChunk + 12345)
	var out bytes.Buffer
	r := &fakeRanger{failStart: -1}
	wb := newWriteback(&out, r)
	if err := writeInPieces(wb, data); err != nil {
		t.Fatal(err)
	}
	if err := wb.close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("bytes differ")
	}
	var want []int64
	for off := int64(0); off+writeChunk <= int64(len(data)); off += writeChunk {
		want = append(want, off)
	}
	if !slices.Equal(r.started, want) || !slices.Equal(r.settled, want) {
		t.Errorf("started %v, settled %v; want %v for both", r.started, r.settled, want)
	}
}

// Settled data is made durable every flushEvery bytes as the file grows,
// and never before it is settled.
func TestWritebackFlushesAsItGoes(t *testing.T) {
	const per = flushEvery / writeChunk
	r := &fakeRanger{failStart: -1}
	wb := newWriteback(io.Discard, r)
	if err := writeInPieces(wb, randomBytes(3*per*writeChunk+writeLag*writeChunk+99)); err != nil {
		t.Fatal(err)
	}
	if err := wb.close(); err != nil {
		t.Fatal(err)
	}
	if want := []int{per, 2 * per, 3 * per}; !slices.Equal(r.flushed, want) {
		t.Fatalf("flushed after %v settled ranges, want %v", r.flushed, want)
	}
}

// An I/O error from a flush fails the write like one from writeback.
func TestWritebackFlushErrorPropagates(t *testing.T) {
	r := &fakeRanger{failStart: -1, failFlush: syscall.EIO}
	wb := newWriteback(io.Discard, r)
	werr := writeInPieces(wb, randomBytes(2*flushEvery))
	if cerr := wb.close(); !errors.Is(cerr, syscall.EIO) {
		t.Fatalf("close: %v, want EIO", cerr)
	}
	if werr != nil && !errors.Is(werr, syscall.EIO) {
		t.Fatalf("write: %v, want EIO or nil", werr)
	}
}

// An I/O error from writeback fails the write that follows, or close.
func TestWritebackErrorPropagates(t *testing.T) {
	r := &fakeRanger{failStart: 2 * writeChunk, err: syscall.EIO}
	wb := newWriteback(io.Discard, r)
	werr := writeInPieces(wb, randomBytes(20*writeChunk))
	cerr := wb.close()
	if !errors.Is(cerr, syscall.EIO) {
		t.Fatalf("close: %v, want EIO", cerr)
	}
	if werr != nil && !errors.Is(werr, syscall.EIO) {
		t.Fatalf("write: %v, want EIO or nil", werr)
	}
}

// Where the file system has no range writeback, it is turned off and the
// write goes on.
func TestWritebackUnsupportedIsNotAnError(t *testing.T) {
	r := &fakeRanger{failStart: 0, err: errUnsupported}
	var out bytes.Buffer
	wb := newWriteback(&out, r)
	data := randomBytes(5 * writeChunk)
	if err := writeInPieces(wb, data); err != nil {
		t.Fatal(err)
	}
	if err := wb.close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) || len(r.started) != 0 {
		t.Fatalf("output equal %v, started %v", bytes.Equal(out.Bytes(), data), r.started)
	}
}

// WriteAtomic through the system's writeback writes the same bytes, and a
// failing write still leaves nothing behind.
func TestWriteAtomicWriteback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("range writeback is Linux's")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	data := randomBytes(3*writeChunk + 777)
	if err := WriteAtomic(context.Background(), path, func(w io.Writer) error {
		if _, ok := w.(*writeback); !ok {
			t.Errorf("writer is %T, want *writeback", w)
		}
		return writeInPieces(w, data)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, data))
	}
	boom := errors.New("boom")
	err = WriteAtomic(context.Background(), filepath.Join(dir, "bad"), func(w io.Writer) error {
		if err := writeInPieces(w, data); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// BenchmarkWriteAtomic writes a 256 MiB file and fsyncs it, with range
// writeback (as WriteAtomic does) and without (every dirty page flushed
// by the final fsync).
//
//	go test ./reorder/tempfile -run '^$' -bench WriteAtomic -benchtime 3x
func BenchmarkWriteAtomic(b *testing.B) {
	data := randomBytes(256 << 20)
	for _, wb := range []bool{true, false} {
		b.Run(map[bool]string{true: "writeback", false: "fsync-only"}[wb], func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			dir := b.TempDir()
			for b.Loop() {
				f, err := os.Create(filepath.Join(dir, "out"))
				if err != nil {
					b.Fatal(err)
				}
				write := func(w io.Writer) error { return writeInPieces(w, data) }
				if wb {
					err = writeBack(f, write)
				} else {
					err = write(f)
				}
				if err == nil {
					err = f.Sync()
				}
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
