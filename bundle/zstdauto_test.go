package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// gzipped is n bytes of half random, half repetitive data, gzip'd: what a
// registry layer looks like to the compressor.
func gzipped(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, n)
	for i := range data {
		if (i>>12)&1 == 0 {
			data[i] = byte(rng.Uint32())
		} else {
			data[i] = "ferry gzip "[i%11]
		}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(data)
	zw.Close()
	return gz.Bytes()
}

// compressLikeReorder writes parts through a Compressor as reorder does:
// a metadata frame, then per part a cut, a 1 KiB head, a cut, the rest
// and a cut.
func compressLikeReorder(t testing.TB, level int, meta []byte, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	c, err := bundle.NewCompressor(&out, bundle.Zstd, level)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(meta)
	if err := c.EndFrame(); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		c.Cut()
		head := min(len(p), 1024)
		write(p[:head])
		c.Cut()
		for rest := p[head:]; len(rest) > 0; {
			n := min(len(rest), writeSize)
			write(rest[:n])
			rest = rest[n:]
		}
		c.Cut()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

var writeSize = 100003

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestAutoLeavesGzipLayersAsBefore: with gzip layers, the default level
// writes exactly the bytes ferry wrote before compression by content (the
// digests were taken from that version), and the same as --level 1.
func TestAutoLeavesGzipLayersAsBefore(t *testing.T) {
	meta := bytes.Repeat([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`), 40)
	got := compressLikeReorder(t, 0, meta, gzipped(9<<20), gzipped(300<<10), gzipped(3<<20))
	if d := digest(got); d != "172115c73ee28ae856baaba3649bd1bc0559e41802198ca1522e588b527cb956" {
		t.Errorf("gzip layers: output %s (%d bytes) differs from before", d, len(got))
	}
	if one := compressLikeReorder(t, 1, meta, gzipped(9<<20), gzipped(300<<10), gzipped(3<<20)); !bytes.Equal(one, got) {
		t.Error("default level and --level 1 differ on gzip layers")
	}

	blobs := newMemBlobs()
	img := gzipLayerImage(t, blobs, 12<<20)
	var out bytes.Buffer
	if err := bundle.Write(context.Background(), &out, []bundle.Image{img}, blobs); err != nil {
		t.Fatal(err)
	}
	if d := digest(out.Bytes()); d != "46185687aba7f878e571a003a6cd194407e63ecb846c02b41d986a51480c1053" {
		t.Errorf("bundle of a gzip layer: output %s (%d bytes) differs from before", d, out.Len())
	}
}

// text is n bytes of lines of words, which compress about 3:1, like the
// source and binaries in an uncompressed layer.
func text(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 5))
	words := strings.Fields("func return if err != nil { } package import type struct interface for range go defer select case default var const map chan")
	var b bytes.Buffer
	for b.Len() < n {
		for range 1 + rng.IntN(12) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}

func noise(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

// windows lists the window sizes of a stream's frames and counts the
// long-window ones.
func longFrames(t *testing.T, out []byte) (frames, long int) {
	t.Helper()
	fs, windows := zstdFrames(t, out)
	for _, w := range windows {
		if w > bundle.MaxZstdWindow {
			t.Fatalf("frame window %d over the %d k3s accepts", w, bundle.MaxZstdWindow)
		}
		if w == bundle.MaxZstdWindow {
			long++
		}
	}
	return len(fs), long
}

// decodeLikeK3s reads a stream as k3s and rke2 do.
func decodeLikeK3s(t *testing.T, out []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(out), zstd.WithDecoderMaxMemory(1<<25))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("k3s-style read: %v", err)
	}
	return got
}

// TestAutoCompressesByContent: compressible input goes to long-window
// frames that find what level 1's frames cannot; gzip'd and random input
// stays in fast frames; every frame reads back as k3s reads it, the seek
// table covers them all, and the bytes do not depend on GOMAXPROCS.
func TestAutoCompressesByContent(t *testing.T) {
	meta := text(1, 5000)
	// The same text twice, further apart than a fast frame reaches, as
	// the same runtime appears in many binaries.
	twice := append(text(2, 3<<20+12345), text(2, 3<<20+12345)...)
	parts := [][]byte{twice, gzipped(3 << 20), noise(3, 2<<20+777), text(4, 300<<10), text(5, 9000)}
	var want []byte
	want = append(want, meta...)
	for _, p := range parts {
		want = append(want, p...)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(1)
	one := compressLikeReorder(t, 0, meta, parts...)
	runtime.GOMAXPROCS(4)
	four := compressLikeReorder(t, 0, meta, parts...)
	if !bytes.Equal(one, four) {
		t.Fatal("output differs between GOMAXPROCS 1 and 4")
	}
	if got := decodeLikeK3s(t, one); !bytes.Equal(got, want) {
		t.Fatalf("round trip: %d bytes, want %d", len(got), len(want))
	}
	frames, long := longFrames(t, one)
	if long == 0 {
		t.Fatal("no long-window frame for compressible input")
	}
	table := seekTableOf(t, one)
	if table.NumFrames() != int64(frames) || int(table.Size()) != len(want) {
		t.Fatalf("seek table: %d frames, %d bytes; stream: %d frames, %d bytes", table.NumFrames(), table.Size(), frames, len(want))
	}
	auto, level1 := compressLikeReorder(t, 0, nil, twice), compressLikeReorder(t, 1, nil, twice)
	if len(auto)*10 > len(level1)*6 {
		t.Errorf("text twice: %d bytes by content, %d at level 1; want the repeat found", len(auto), len(level1))
	}
	if _, long := longFrames(t, level1); long != 0 {
		t.Errorf("--level 1 wrote %d long-window frames", long)
	}
}

// TestAutoSeparatesContentKinds: a stream's kinds of input land in frames
// of their own kind, whatever came before.
func TestAutoSeparatesContentKinds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [][]byte
		long  int
	}{
		{"text", [][]byte{text(1, 3<<20)}, 1},
		{"gzip", [][]byte{gzipped(5 << 20)}, 0},
		{"random", [][]byte{noise(1, 5<<20)}, 0},
		{"text under a chunk", [][]byte{text(1, 2<<20-1)}, 0}, // not judged: as at level 1
		{"text, random, text", [][]byte{text(1, 3<<20), noise(2, 3<<20), text(3, 3<<20)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := compressLikeReorder(t, 0, nil, tc.parts...)
			if _, long := longFrames(t, out); long != tc.long {
				t.Errorf("%d long-window frames, want %d", long, tc.long)
			}
			level1 := compressLikeReorder(t, 1, nil, tc.parts...)
			if same := bytes.Equal(out, level1); same != (tc.long == 0) {
				t.Errorf("same bytes as level 1: %v, with %d long-window frames", same, tc.long)
			}
		})
	}
}

func seekTableOf(t *testing.T, out []byte) seekable.SeekTable {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(bundle.MaxZstdWindow))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Close)
	sr, err := seekable.NewReader(bytes.NewReader(out), dec)
	if err != nil {
		t.Fatalf("no seek table: %v", err)
	}
	table, err := sr.SeekTable()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestOpenReadsLongWindowFrames: bundle.Open finds the entries of, and
// reads back, uncompressed layers written in one long-window frame, too
// large for the seekable reader's frame cache, that holds both layers and
// the second one's header.
func TestOpenReadsLongWindowFrames(t *testing.T) {
	blobs := newMemBlobs()
	var imgs []bundle.Image
	for i, data := range [][]byte{text(7, 11<<20+99), text(8, 9<<20)} {
		img, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, verifytest.ImageOf(t, blobs.data, img, fmt.Sprintf("docker.io/ferry/text:%d", i)))
	}
	out := write(t, imgs, blobs, bundle.WithCompression(bundle.Zstd, 0))
	if _, long := longFrames(t, out); long != 1 {
		t.Fatalf("%d long-window frames for two uncompressed layers, want 1", long)
	}
	a := openBytes(t, out)
	if !a.Seekable() {
		t.Fatal("bundle is not seekable")
	}
	for _, want := range imgs {
		ref, _ := name.ParseReference(want.Name)
		img, err := a.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := want.Parsed()
		layers, _ := img.Layers()
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, blobs.data[m.Layers[0].Digest]) {
			t.Errorf("%s: %v, %d bytes", want.Name, err, len(got))
		}
	}
}
