package bundle_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// cancelAfter serves a blob, cancelling the context once n bytes are read
// and failing with its error from then on, as a fetch does.
type cancelAfter struct {
	*memBlobs
	n      int
	cancel context.CancelFunc
}

func (c cancelAfter) Open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	rc, err := c.memBlobs.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	return &cancelReader{ReadCloser: rc, ctx: ctx, left: c.n, cancel: c.cancel}, nil
}

type cancelReader struct {
	io.ReadCloser
	ctx    context.Context
	left   int
	cancel context.CancelFunc
}

func (r *cancelReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		r.cancel()
		return 0, r.ctx.Err()
	}
	n, err := r.ReadCloser.Read(b[:min(len(b), r.left)])
	r.left -= n
	return n, err
}

// Cancelling a bundle whose uncompressed layer is being compressed in
// the background stops that work: Write returns the context's error and
// leaves neither goroutines nor spill files.
func TestWriteCancelStopsLongFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"ferry ", "layer ", "digest ", "zstd ", "frame\n"}
	var data []byte
	for len(data) < 12<<20 {
		data = append(data, words[rng.IntN(len(words))]...)
	}
	blobs := newMemBlobs()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.DockerUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	images := []bundle.Image{verifytest.ImageOf(t, blobs.data, img, "docker.io/ferry/plain:1")}
	dir := t.TempDir()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = bundle.Write(ctx, io.Discard, images, cancelAfter{blobs, 9 << 20, cancel},
		bundle.WithCompression(bundle.Zstd, 0), bundle.WithSpillDir(dir))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v, want %v", err, context.Canceled)
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > base; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Write, %d before", runtime.NumGoroutine(), base)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d spill files left, first %s", len(left), left[0].Name())
	}
}
