package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/rancher/ferry/bundle"
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
