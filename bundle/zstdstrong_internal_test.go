package bundle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testFrame is the long-window frame size in these tests, so that a few
// MiB of input make several frames.
const testFrame = 2 * zstdChunk

// compressible is n bytes of words drawn at random: it compresses, but
// not to nothing, so frames take some time.
func compressible(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	words := []string{"ferry ", "layer ", "image ", "manifest ", "digest ", "sha256 ", "blob ", "zstd ", "frame\n", "window "}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[rng.IntN(len(words))]...)
		if rng.IntN(8) == 0 {
			b = append(b, byte('a'+rng.IntN(26)), byte('0'+rng.IntN(10)))
		}
	}
	return b[:n]
}

func incompressible(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// strongInput is metadata, then long-window frames with a fast frame
// between them and a short one at the end.
func strongInput() [][]byte {
	return [][]byte{
		compressible(1, zstdChunk/2), // metadata
		compressible(2, 3*testFrame+zstdChunk),
		incompressible(3, zstdChunk),
		compressible(4, 2*testFrame),
		compressible(5, zstdChunk+100),
	}
}

func newTestStrong(t *testing.T, dst io.Writer, workers int, dir string) *parallelZstd {
	t.Helper()
	p, err := newParallelZstd(dst, 0, options{strongWorkers: workers, spillDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p.auto.frame = testFrame
	if (p.auto.par != nil) != (workers > 1) {
		t.Fatalf("%d workers: parallel %v", workers, p.auto.par != nil)
	}
	return p
}

func compressStrong(t *testing.T, workers int, dir string) []byte {
	t.Helper()
	var out bytes.Buffer
	p := newTestStrong(t, &out, workers, dir)
	for i, part := range strongInput() {
		p.metadata(i == 0)
		for len(part) > 0 {
			n := min(len(part), 1<<20+123)
			if _, err := p.Write(part[:n]); err != nil {
				t.Fatal(err)
			}
			part = part[n:]
		}
		if i == 0 {
			if err := p.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Frames compressed in parallel are the bytes compressed inline, whatever
// the number of jobs; the stream reads back under k3s's window limit, and
// no spill file is left.
func TestStrongFramesInParallelAreDeterministic(t *testing.T) {
	dir := t.TempDir()
	want := compressStrong(t, 1, dir)
	for _, workers := range []int{2, 3} {
		got := compressStrong(t, workers, dir)
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("%d workers: output differs from inline (%d bytes, want %d)", workers, len(got), len(want))
		}
	}
	dec, err := zstd.NewReader(bytes.NewReader(want), zstd.WithDecoderMaxMemory(MaxZstdWindow), zstd.WithDecoderMaxWindow(MaxZstdWindow))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Join(strongInput(), nil)) {
		t.Fatalf("round trip: %d bytes differ from the input", len(got))
	}
	if frames := countLongFrames(t, want); frames < 5 {
		t.Fatalf("%d long-window frames; the input should make at least 5", frames)
	}
	assertEmptyDir(t, dir)
}

func countLongFrames(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for len(b) > 0 {
		var h zstd.Header
		if err := h.Decode(b); err != nil {
			t.Fatal(err)
		}
		if h.Skippable {
			b = b[8+h.SkippableSize:]
			continue
		}
		if h.WindowSize == MaxZstdWindow {
			n++
		}
		size := frameLen(t, b)
		b = b[size:]
	}
	return n
}

// frameLen walks one zstd frame's blocks.
func frameLen(t *testing.T, b []byte) int {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		t.Fatal(err)
	}
	off := h.HeaderSize
	for {
		hdr := uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16
		last, typ, size := hdr&1 == 1, (hdr>>1)&3, int(hdr>>3)
		if typ == 1 { // RLE: one byte
			size = 1
		}
		off += 3 + size
		if last {
			break
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	return off
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d spill files left in %s, first %s", len(left), dir, left[0].Name())
	}
}

// waitGoroutines waits for the goroutines started since base to end.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Abort, with a frame open and others compressing, stops every job and
// leaves neither goroutines nor files.
func TestStrongAbortStopsJobs(t *testing.T) {
	dir := t.TempDir()
	base := runtime.NumGoroutine()
	p := newTestStrong(t, io.Discard, 2, dir)
	data := compressible(6, 2*testFrame+zstdChunk)
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	p.place()
	if !p.auto.open || p.auto.job == nil || p.auto.par.inFlight() == 0 {
		t.Fatalf("no job open (open %v) or in flight", p.auto.open)
	}
	p.Abort()
	if err := p.Close(); !errors.Is(err, errAborted) {
		t.Fatalf("Close after Abort: %v, want %v", err, errAborted)
	}
	waitGoroutines(t, base)
	assertEmptyDir(t, dir)
}

// A destination that fails while jobs write: the error reaches Write or
// Close, and nothing is left running.
func TestStrongWriteErrorSurfaces(t *testing.T) {
	dir := t.TempDir()
	base := runtime.NumGoroutine()
	p := newTestStrong(t, &failAfter{n: 1 << 10}, 2, dir)
	var werr error
	for _, part := range strongInput()[1:] {
		if _, werr = p.Write(part); werr != nil {
			break
		}
	}
	cerr := p.Close()
	if !errors.Is(werr, errDiskFull) && !errors.Is(cerr, errDiskFull) {
		t.Fatalf("Write: %v, Close: %v; want %v", werr, cerr, errDiskFull)
	}
	waitGoroutines(t, base)
	assertEmptyDir(t, dir)
}

// A spill directory that cannot be written to fails the stream.
func TestStrongSpillErrorSurfaces(t *testing.T) {
	missing := t.TempDir() + "/missing"
	p := newTestStrong(t, io.Discard, 2, missing)
	_, werr := p.Write(compressible(8, 2*zstdChunk))
	cerr := p.Close()
	if werr == nil && cerr == nil {
		t.Fatal("no error for a spill directory that does not exist")
	}
}
