package bundle_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
)

// TestParallelZstdRoundTripAndDeterminism writes more than several chunks
// in odd-sized pieces: the output must decode to the input, be the same
// bytes every time, and consist of frames within the k3s window cap.
func TestParallelZstdRoundTripAndDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	in := make([]byte, 13<<20+12345)
	for i := range in {
		if (i>>14)&1 == 0 {
			in[i] = byte(rng.Uint32())
		}
	}
	compress := func() []byte {
		var out bytes.Buffer
		c, err := bundle.NewCompressor(&out, bundle.Zstd, 0)
		if err != nil {
			t.Fatal(err)
		}
		rest := in
		for step := 1; len(rest) > 0; step = step*7%100003 + 1 {
			n := min(step, len(rest))
			if _, err := c.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
			if len(rest) < len(in)/2 && len(rest)+n >= len(in)/2 {
				if err := c.EndFrame(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	a, b := compress(), compress()
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("parallel zstd output differs between runs")
	}
	frames, windows := zstdFrames(t, a)
	if len(frames) < 4 {
		t.Fatalf("%d frames for %d bytes", len(frames), len(in))
	}
	for _, w := range windows {
		if w > bundle.MaxZstdWindow {
			t.Fatalf("window %d over the cap", w)
		}
	}
	dec, err := zstd.NewReader(bytes.NewReader(a), zstd.WithDecoderMaxMemory(1<<25))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(dec)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("round trip: %d bytes, equal=%v, err=%v", len(got), bytes.Equal(got, in), err)
	}
}
