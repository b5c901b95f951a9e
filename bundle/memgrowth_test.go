package bundle_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

// smallImages makes n distinct images as a large airgap set has them: one
// repository each, a base layer they all share and a small layer of their
// own. Only manifests and configs exist; no layer is ever read.
func smallImages(t testing.TB, n int) []bundle.Image {
	t.Helper()
	digest := func(b []byte) v1.Hash {
		s := sha256.Sum256(b)
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
	}
	base := v1.Descriptor{MediaType: types.DockerLayer, Size: 16 << 10, Digest: digest([]byte("base"))}
	out := make([]bundle.Image, n)
	for i := range out {
		own := v1.Descriptor{MediaType: types.DockerLayer, Size: 1 << 10, Digest: digest(fmt.Appendf(nil, "own %d", i))}
		config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"n":"%d"}},"rootfs":{"type":"layers","diff_ids":["%s","%s"]}}`,
			i, digest([]byte("base diff")), digest(fmt.Appendf(nil, "own diff %d", i)))
		manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","size":%d,"digest":"%s"},"layers":[{"mediaType":"%s","size":%d,"digest":"%s"},{"mediaType":"%s","size":%d,"digest":"%s"}]}`,
			types.DockerManifestSchema2, types.DockerConfigJSON, len(config), digest(config),
			base.MediaType, base.Size, base.Digest, own.MediaType, own.Size, own.Digest)
		out[i] = bundle.Image{
			Name: fmt.Sprintf("registry.example.com/scale/img-%05d:v1", i), Tag: "v1",
			Descriptor: v1.Descriptor{MediaType: types.DockerManifestSchema2, Size: int64(len(manifest)), Digest: digest(manifest),
				Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
			Manifest: manifest, Config: config,
		}
	}
	return out
}

var errMeasured = errors.New("measured")

// atFirstLayer measures the live heap when Write opens its first layer:
// the metadata is written and everything Write keeps for the layers is
// in place, so this is the most Write holds beyond the images it is given.
type atFirstLayer struct{ live uint64 }

func (a *atFirstLayer) Open(context.Context, v1.Descriptor) (io.ReadCloser, error) {
	a.live = liveHeap()
	return nil, errMeasured
}

// liveHeap is the heap after two collections: the second frees what
// pools dropped in the first, which would otherwise count against
// whichever measurement it happened in.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heldPerImage is what Write holds beyond its images, per image, for a
// bundle of n.
func heldPerImage(t *testing.T, n int) float64 {
	images := smallImages(t, n)
	before := liveHeap()
	var at atFirstLayer
	err := bundle.Write(context.Background(), io.Discard, images, &at, bundle.WithCompression(bundle.None, 0))
	if !errors.Is(err, errMeasured) {
		t.Fatalf("%d images: %v", n, err)
	}
	runtime.KeepAlive(images)
	return float64(int64(at.live)-int64(before)) / float64(n)
}

// What Write keeps while a bundle of thousands of images is written must
// not grow with their number much beyond the layers it has still to
// write (one record per distinct blob). Two sizes in one process: what
// both share (encoders, buffers) cancels out of the growth.
func TestWriteHeldGrowthPerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds thousands of images")
	}
	const small, large = 1000, 3000
	a := heldPerImage(t, small) * small
	b := heldPerImage(t, large) * large
	growth := (b - a) / (large - small)
	t.Logf("Write holds %.0f bytes per extra image", growth)
	if growth > maxHeldPerImage {
		t.Errorf("Write holds %.0f bytes per extra image beyond the images themselves; want at most %d", growth, maxHeldPerImage)
	}
}

// maxHeldPerImage leaves room above what Write must hold per image until
// it is written (its layer's record, its blobs' names, index entries),
// but not for a manifest.json entry or a repositories map per image kept
// from planning.
const maxHeldPerImage = 1000

// zeroBlobs serves every layer as zeros of its size: smallImages' layers
// exist only as descriptors.
type zeroBlobs struct{}

func (zeroBlobs) Open(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(zeros{}, d.Size)), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A metadata section of tens of megabytes goes to the long-window metadata
// encoder, beyond its window; its bytes are pinned like
// TestWriteImagesGoldenBytes'.
func TestWriteManyImagesGoldenBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and compresses thousands of images")
	}
	images := smallImages(t, 9000)
	h := sha256.New()
	err := bundle.Write(context.Background(), h, images, zeroBlobs{}, bundle.WithCompression(bundle.Zstd, 0), bundle.WithBlobsVerified(true))
	if err != nil {
		t.Fatal(err)
	}
	const want = "3782f92b91c9a73999caff082951840381eff192459278dec98503ed140f1fed"
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("sha256 %s, want %s", got, want)
	}
}
