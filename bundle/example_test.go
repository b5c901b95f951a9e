package bundle_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/rancher/ferry/bundle"
)

// Write a zstd bundle from images held as go-containerregistry v1.Images:
// here random ones, but remote.Image, layout and tarball images work alike.
func ExampleWriteImages() {
	var images []bundle.NamedImage
	for _, ref := range []string{"example.com/app:v1", "example.com/sidecar:v2"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			log.Fatal(err)
		}
		r, err := name.ParseReference(ref)
		if err != nil {
			log.Fatal(err)
		}
		images = append(images, bundle.NamedImage{Ref: r, Image: img})
	}
	var buf bytes.Buffer
	if err := bundle.WriteImages(context.Background(), &buf, images, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
		log.Fatal(err)
	}

	contents, err := bundle.ReadContents(context.Background(), &buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("compression:", contents.Compression, "metadata first:", contents.MetadataFirst)
	for _, d := range contents.Docker {
		fmt.Println(d.RepoTags, len(d.Layers), "layers")
	}
	// Output:
	// compression: zstd metadata first: true
	// [example.com/app:v1] 2 layers
	// [example.com/sidecar:v2] 2 layers
}
