package bundle_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// TestOpenChecksFrameChecksums damages the seek table's checksum of each
// frame in turn: the frames Open reads whole (metadata and headers) must
// fail the check, as the seekable format's reader made them fail.
func TestOpenChecksFrameChecksums(t *testing.T) {
	blobs := newMemBlobs()
	out := write(t, twoImages(t, blobs), blobs, bundle.WithCompression(bundle.Zstd, 0))
	n := int(binary.LittleEndian.Uint32(out[len(out)-9:]))
	entries := len(out) - 9 - 12*n
	failed := 0
	for id := 0; id < n; id++ {
		bad := bytes.Clone(out)
		bad[entries+12*id+8] ^= 0x01 // the low byte of frame id's checksum
		a, err := bundle.Open(context.Background(), bytes.NewReader(bad), int64(len(bad)))
		if err == nil {
			a.Close()
			continue
		}
		if !errors.Is(err, bundle.ErrBadSeekTable) {
			t.Errorf("frame %d: %v, want ErrBadSeekTable", id, err)
		}
		failed++
	}
	// The metadata frame and one header frame per layer at least.
	if failed < 3 {
		t.Errorf("%d of %d damaged checksums failed Open", failed, n)
	}
}

// TestMetadataFrameDecodedOnce: the metadata frame stays decoded after
// Open's walk has passed every layer's frames, so neither Open's reads of
// index.json and manifest.json nor Contents' of the manifests decode it a
// second time.
func TestMetadataFrameDecodedOnce(t *testing.T) {
	blobs := newMemBlobs()
	var imgs []bundle.Image
	for i := range 40 { // more layers than the cache has slots
		layer, err := random.Layer(1<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, verifytest.ImageOf(t, blobs.data, img, fmt.Sprintf("example.com/many/img-%d:v1", i)))
	}
	out := write(t, imgs, blobs, bundle.WithCompression(bundle.Zstd, 0))
	frames := int(binary.LittleEndian.Uint32(out[len(out)-9:]))
	metadata := int64(binary.LittleEndian.Uint32(out[len(out)-9-12*frames+4:])) // frame 0's decompressed size
	a, err := bundle.Open(context.Background(), bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if c := a.Contents(); len(c.Images()) != 40 || c.Images()[0].Layers != 1 {
		t.Fatalf("listed %+v", c.Images())
	}
	// Once, plus a header and a head frame per layer: far less than twice.
	if got := a.Inflated(); got >= 2*metadata {
		t.Errorf("Open and Contents decompressed %d bytes; the metadata frame is %d", got, metadata)
	}
}
