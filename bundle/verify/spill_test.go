package verify_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// spillFixture is a zstd bundle whose first layer (16 MiB of text, ~5 MiB
// gzipped) inflates several times slower than the reader reads it, so with
// a second worker slot free, Verify spills it to reach the next layers.
var spillFixture = sync.OnceValue(func() []byte {
	blobs := verifytest.Blobs{}
	var layers []verifytest.Layer
	for i, size := range []int{16 << 20, 4 << 20, 2 << 20, 1 << 20} {
		layers = append(layers, verifytest.GzipLayer(textLayer(int64(200+i), size)))
	}
	img := verifytest.Image("docker.io/rancher/spill:1", "1", verifytest.Win1809, layers, blobs)
	return verifytest.Zstd(verifytest.Write([]bundle.Image{img}, blobs, false))
})

// textLayer is a layer tar of one file of random words, which compresses
// well: inflating it is slow for its compressed size.
func textLayer(seed int64, size int) []byte {
	rnd := rand.New(rand.NewSource(seed))
	words := strings.Fields("layer config manifest blob digest registry bundle windows linux amd64 func return if else for range error nil")
	var text bytes.Buffer
	for text.Len() < size {
		text.WriteString(words[rnd.Intn(len(words))])
		text.WriteByte(" \n"[rnd.Intn(2)])
	}
	return verifytest.Tar([]verifytest.Entry{verifytest.Reg(fmt.Sprintf("words-%d.txt", seed), text.Bytes())})
}

// spillTest needs two cores' worth of slots: Verify spills only to start
// a worker on an idle core. It returns a spill dir in which files keep
// their names, so that one left behind shows.
func spillTest(t *testing.T) string {
	if old := runtime.GOMAXPROCS(0); old < 2 {
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	}
	t.Cleanup(verify.KeepSpillNames())
	return t.TempDir()
}

func TestVerifySpills(t *testing.T) {
	dir := spillTest(t)
	data := spillFixture()
	for _, tc := range []struct {
		name     string
		dir      string
		max      int64
		jobs     int
		spills   bool
		maxBytes int64
	}{
		{"default budget", dir, verify.DefaultMaxSpill, 2, true, verify.DefaultMaxSpill},
		{"four jobs", dir, verify.DefaultMaxSpill, 4, true, verify.DefaultMaxSpill},
		{"1 MiB budget", dir, 1 << 20, 2, true, 1 << 20},
		{"no budget", dir, 0, 2, false, 0},
		{"one job", dir, verify.DefaultMaxSpill, 1, false, 0},
		{"unwritable dir", filepath.Join(dir, "missing"), verify.DefaultMaxSpill, 2, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, total, peak, err := verify.ArchiveSpilled(context.Background(), bytes.NewReader(data),
				verify.WithJobs(tc.jobs), verify.WithSpill(tc.dir, tc.max))
			if err != nil || !rep.OK() || countChecks(rep, "diff-id", true) != 4 {
				t.Fatalf("err %v, problems:\n%s", err, problems(rep))
			}
			t.Logf("spilled %d bytes, at most %d at once", total, peak)
			if (total > 0) != tc.spills || peak > tc.maxBytes {
				t.Fatalf("spilled %d bytes, %d at once; want spilling %v, at most %d", total, peak, tc.spills, tc.maxBytes)
			}
			assertEmptyDir(t, dir)
		})
	}
}

// cancelAfter cancels a context once n bytes have been read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestVerifySpillStops ends verification while layers are spilled, by
// cancellation and by a truncated archive: no file and no goroutine may
// outlive Verify.
func TestVerifySpillStops(t *testing.T) {
	dir := spillTest(t)
	data := spillFixture()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := &cancelAfter{r: bytes.NewReader(data), n: len(data) * 6 / 10, cancel: cancel}
	_, total, _, err := verify.ArchiveSpilled(ctx, in, verify.WithJobs(2), verify.WithSpill(dir, verify.DefaultMaxSpill))
	if !errors.Is(err, context.Canceled) || total == 0 {
		t.Fatalf("cancelled: err %v, spilled %d", err, total)
	}
	assertEmptyDir(t, dir)

	rep, total, _, err := verify.ArchiveSpilled(context.Background(), bytes.NewReader(data[:len(data)*6/10]),
		verify.WithJobs(2), verify.WithSpill(dir, verify.DefaultMaxSpill))
	if err != nil || !mentions(rep, "archive", "truncated") || total == 0 {
		t.Fatalf("truncated: err %v, spilled %d, problems:\n%s", err, total, problems(rep))
	}
	assertEmptyDir(t, dir)

	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// onlyReader hides everything but Read, so Verify streams a plain tar
// instead of reading its layers by offset.
type onlyReader struct{ io.Reader }

// TestVerifyByOffset checks that reading a plain tar by offset reports
// exactly what streaming it does, on the corpus and on archives whose
// layers are bigger than a chunk, where the offset path is taken.
func TestVerifyByOffset(t *testing.T) {
	f := verifytest.NewFixture(9, 1<<20)
	es := verifytest.Entries(f.Tar)
	layer := verifytest.Find(es, f.Layer)
	flipped := append([]verifytest.Entry(nil), es...)
	flipped[layer].Data = bytes.Clone(flipped[layer].Data)
	flipped[layer].Data[len(flipped[layer].Data)*3/4] ^= 1
	layerEnd := verifytest.HeaderOffset(f.Tar, f.Layer) + 512 + len(es[layer].Data)
	cases := map[string][]byte{
		"big layers":                     f.Tar,
		"flipped bit late in a layer":    verifytest.Tar(flipped),
		"truncated late in a layer":      f.Tar[:layerEnd-100],
		"truncated at the end of layer":  f.Tar[:layerEnd],
		"truncated after a layer header": f.Tar[:verifytest.HeaderOffset(f.Tar, f.Layer)+512],
	}
	for _, tc := range verifytest.Corpus() {
		if c, _ := bundle.DetectCompression(bufio.NewReader(bytes.NewReader(tc.Data))); c == bundle.None {
			cases["corpus: "+tc.Name] = tc.Data // compressed ones stream either way
		}
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			byOffset := verifyData(t, data)
			streamed, err := verify.Archive(context.Background(), onlyReader{bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(byOffset, streamed) {
				t.Fatalf("by offset:\n%s\nstreamed:\n%s", problems(byOffset), problems(streamed))
			}
		})
	}
}

func TestVerifyFileByOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(path, verifytest.NewFixture(10, 1<<20).Tar, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Archive(context.Background(), f, verify.WithJobs(3))
	if err != nil || !rep.OK() || rep.Compression != bundle.None || countChecks(rep, "diff-id", true) != 3 {
		t.Fatalf("err %v, report %+v, problems:\n%s", err, rep, problems(rep))
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
		t.Fatalf("offset moved to %d", pos)
	}
}
