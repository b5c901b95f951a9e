package bundle_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// manyImagesBundle writes a zstd bundle of n small linux/amd64 images,
// each of a base layer they all share, a small layer and a config of its
// own, as the scale bench's registry serves them, and returns its path.
func manyImagesBundle(b *testing.B, n int) string {
	b.Helper()
	blobs := newMemBlobs()
	base, err := random.Layer(16<<10, types.DockerLayer)
	if err != nil {
		b.Fatal(err)
	}
	imgs := make([]bundle.Image, n)
	for i := range imgs {
		own, err := random.Layer(1<<10, types.DockerLayer)
		if err != nil {
			b.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, base, own)
		if err != nil {
			b.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			b.Fatal(err)
		}
		// A config of its own, with the layers' diff_ids and a label, as
		// scripts/lib/e2eimages pushes them: 15,000 entries in all.
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		cf.Config.Labels = map[string]string{"n": strconv.Itoa(i)}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			b.Fatal(err)
		}
		imgs[i] = verifytest.ImageOf(b, blobs.data, img, fmt.Sprintf("registry.example/scale/img-%05d:v1", i))
	}
	path := writeZstdBundle(b, "many.tar.zst", imgs, blobs)
	return path
}

// BenchmarkManyImages opens a bundle of 5,000 small images, written once,
// and lists it as `ferry list` does: Open walks every tar header through
// the seek table's small frames, Contents reads what the listing needs.
// Run it with -cpuprofile and -memprofile to see where listing goes.
func BenchmarkManyImages(b *testing.B) {
	path := manyImagesBundle(b, 5000)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("Open", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a, err := bundle.OpenPath(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			a.Close()
		}
		b.SetBytes(st.Size())
	})
	b.Run("Contents", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a, err := bundle.OpenPath(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			if imgs := a.Contents().Images(); len(imgs) != 5000 || imgs[0].Platform == nil || imgs[0].Layers != 2 {
				b.Fatalf("listed %d images, first %+v", len(imgs), imgs[0])
			}
			a.Close()
		}
		b.SetBytes(st.Size())
	})
}
