package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGrowingFileFollowsWriter reads a file while it is written, across a
// retry that rewrites it from the start, and sees exactly the final bytes.
func TestGrowingFileFollowsWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("ferry!"), 50000)
	g := newGrowingFile(path)
	r, err := g.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, attempt := range []int{len(want) / 3, len(want)} { // the first attempt breaks off
			for off := 0; off < attempt; off += 7000 {
				end := min(off+7000, attempt)
				f.WriteAt(want[off:end], int64(off))
				g.wrote(int64(end))
				time.Sleep(time.Millisecond)
			}
		}
		g.finish(nil, nil)
	}()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (want %d), err %v", len(got), len(want), err)
	}
}

func TestGrowingFileReportsDownloadError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(path, []byte("abcdef"), 0o600)
	g := newGrowingFile(path)
	r, _ := g.open(context.Background())
	g.wrote(6)
	bad := errors.New("digest mismatch at EOF")
	go func() { time.Sleep(10 * time.Millisecond); g.finish(bad, nil) }()
	got, err := io.ReadAll(r)
	if string(got) != "abcdef" || !errors.Is(err, bad) {
		t.Fatalf("got %q, %v; a failed download must not end in a clean EOF", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g2 := newGrowingFile(path)
	r2, _ := g2.open(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := io.ReadAll(r2); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reader: %v", err)
	}
}
