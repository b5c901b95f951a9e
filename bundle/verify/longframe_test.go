package verify_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// wordsLayer is an uncompressed layer of one file of size bytes of words,
// as docker save stores layers: what compression by content puts in
// long-window frames.
func wordsLayer(seed uint64, size int) verifytest.Layer {
	rng := rand.New(rand.NewPCG(seed, 11))
	words := strings.Fields("the image layer config manifest blob digest registry bundle windows linux amd64 func return if else for range error nil")
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(" \n"[rng.IntN(2)])
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("src/file-%d.go", seed), Mode: 0o644, Size: int64(b.Len()), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(b.String()))
	_ = tw.Close()
	return verifytest.Layer{Blob: buf.Bytes(), DiffID: verifytest.Hash(buf.Bytes()), MediaType: types.DockerUncompressedLayer}
}

// longFrame is the bundle longFrameBundle makes once: compressing it at
// the strongest level is most of what these tests cost.
var longFrame struct {
	once   sync.Once
	data   []byte
	layers []verifytest.Layer
	err    error
}

// longFrameBundle is a zstd bundle, compressed by content, of an image of
// four uncompressed layers that share one long-window frame: the first
// fills a chunk, which starts the frame, and the others, shorter than a
// chunk, stay in it.
func longFrameBundle(t *testing.T) ([]byte, []verifytest.Layer) {
	t.Helper()
	longFrame.once.Do(func() {
		blobs := verifytest.Blobs{}
		sizes := []int{2<<20 + 1000, 256 << 10, 256<<10 + 1000, 256<<10 + 2000}
		for i, size := range sizes {
			longFrame.layers = append(longFrame.layers, wordsLayer(uint64(i), size))
		}
		img := verifytest.Image("docker.io/rancher/long:v1", "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, longFrame.layers, blobs)
		var buf bytes.Buffer
		longFrame.err = bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs, bundle.WithCompression(bundle.Zstd, 0))
		longFrame.data = buf.Bytes()
	})
	if longFrame.err != nil {
		t.Fatal(longFrame.err)
	}
	data := longFrame.data
	ot, err := bundle.OpenOffsetTar(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if ends := frameEnds(t, data); !ot.Forward(0, ot.Size()) || len(ends) > 6 {
		t.Fatalf("%d frames, a long-window one: %v", len(ends), ot.Forward(0, ot.Size()))
	}
	return data, longFrame.layers
}

// TestVerifyLongFramesOnce: the layers of a long-window frame are read by
// the one reader that scans the frame for their headers, so verify
// decompresses each byte of the bundle once, in both modes, rather than
// the frame once more from its start for each layer in it.
func TestVerifyLongFramesOnce(t *testing.T) {
	data, _ := longFrameBundle(t)
	ot, err := bundle.OpenOffsetTar(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		rep, inflated, err := verify.ArchiveInflated(context.Background(), bytes.NewReader(data), verify.WithMode(mode), verify.WithJobs(4))
		if err != nil || !rep.OK() {
			t.Fatalf("%s: %v\n%s", mode, err, problems(rep))
		}
		if n := countChecks(rep, "diff-id", true); n != 4 {
			t.Fatalf("%s: %d diff_ids checked, want 4", mode, n)
		}
		if slack := int64(1 << 20); inflated < ot.Size() || inflated > ot.Size()+slack {
			t.Errorf("%s: decompressed %d bytes of a %d-byte tar stream", mode, inflated, ot.Size())
		}
	}
}

// TestVerifyLongFrameDamage: a byte flipped inside a layer of a long-window
// frame fails verify in both modes, naming that layer's blob.
func TestVerifyLongFrameDamage(t *testing.T) {
	data, layers := longFrameBundle(t)
	raw, _, err := bundle.Decompress(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	victim := layers[2]
	at := bytes.Index(plain.Bytes(), victim.Blob[512:4096]) + 100000
	// Damage the tar, then compress it again as the bundle was: the frame
	// checksum matches, only the blob digest can tell.
	bad := bytes.Clone(plain.Bytes())
	bad[at] ^= 0x20
	var out bytes.Buffer
	c, err := bundle.NewCompressor(&out, bundle.Zstd, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bad); err != nil || c.Close() != nil {
		t.Fatal(err)
	}
	name := bundle.CleanName(bundle.BlobPath(verifytest.Hash(victim.Blob)))
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		rep := verifyData(t, out.Bytes(), verify.WithMode(mode))
		if rep.OK() || !mentions(rep, "blob-digest", name) {
			t.Fatalf("%s: byte %d of the tar flipped: problems:\n%s", mode, at, problems(rep))
		}
	}
}

// TestVerifyLongFrameFlips: a compressed byte flipped inside the
// long-window frame fails verify in both modes, naming the blob whose
// bytes it damages: where the frame stops decoding, or, where it decodes
// to wrong bytes until its checksum fails at its end, by the blob's digest.
func TestVerifyLongFrameFlips(t *testing.T) {
	data, layers := longFrameBundle(t)
	plain := decodeAll(t, data)
	ends := frameEnds(t, data)
	start, size, prev := 0, 0, 0
	for _, e := range ends {
		if e-prev > size {
			start, size = prev, e-prev
		}
		prev = e
	}
	named := 0
	for i := 1; i < 7; i++ {
		at := start + size*i/7
		bad := bytes.Clone(data)
		bad[at] ^= 0x20
		victim := damaged(plain, decodeAll(t, bad), layers)
		for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
			rep := verifyData(t, bad, verify.WithMode(mode))
			if rep.OK() {
				t.Fatalf("%s: compressed byte %d flipped: verified", mode, at)
			}
			if victim != "" && !strings.Contains(problems(rep), victim) {
				t.Errorf("%s: compressed byte %d flipped damages %s: problems:\n%s", mode, at, victim, problems(rep))
			}
		}
		if victim != "" {
			named++
		}
	}
	if named < 4 {
		t.Fatalf("%d of 6 flips damage a layer's data", named)
	}
}

// decodeAll decompresses a zstd stream as far as it decodes, without
// checking frame checksums.
func decodeAll(t *testing.T, data []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data), zstd.IgnoreChecksum(true), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, _ := io.ReadAll(dec)
	return out
}

// damaged names the blob of the layer holding the first byte where got,
// decoded from a damaged stream, stops matching want: "" when that byte is
// not in a layer's data.
func damaged(want, got []byte, layers []verifytest.Layer) string {
	d := 0
	for d < len(got) && d < len(want) && got[d] == want[d] {
		d++
	}
	for _, l := range layers {
		if at := bytes.Index(want, l.Blob); at >= 0 && d >= at && d < at+len(l.Blob) {
			return bundle.CleanName(bundle.BlobPath(verifytest.Hash(l.Blob)))
		}
	}
	return ""
}
