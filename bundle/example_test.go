package bundle_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// Open a bundle and read one image out of it as a v1.Image: only the
// frames that hold its manifest, config and layers are decompressed.
func ExampleOpen() {
	img, err := random.Image(4096, 2)
	if err != nil {
		log.Fatal(err)
	}
	ref, err := name.ParseReference("example.com/app:v1")
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bundle.WriteImages(context.Background(), &buf, []bundle.NamedImage{{Ref: ref, Image: img}}, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
		log.Fatal(err)
	}

	a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	stored, err := a.Image(ref)
	if err != nil {
		log.Fatal(err)
	}
	want, _ := img.Digest()
	got, _ := stored.Digest()
	layers, _ := stored.Layers()
	fmt.Println("seekable:", a.Seekable(), "same digest:", got == want, "layers:", len(layers))
	for _, l := range layers {
		rc, err := l.Compressed() // checked against its digest as it is read
		if err != nil {
			log.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			log.Fatal(err)
		}
		size, _ := l.Size()
		fmt.Println("read", n == size)
	}
	// Output:
	// seekable: true same digest: true layers: 2
	// read true
	// read true
}
