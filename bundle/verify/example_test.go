package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
)

// Verify a bundle: every digest, and that it holds the images expected.
func ExampleArchive() {
	img, err := random.Image(2048, 2)
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
	data := buf.Bytes()

	rep, err := verify.Archive(context.Background(), bytes.NewReader(data),
		verify.WithExpectedImages([]string{"example.com/app:v1"}, true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", rep.OK())

	rep, err = verify.Archive(context.Background(), bytes.NewReader(data),
		verify.WithExpectedImages([]string{"example.com/app:v1", "example.com/db:v1"}, true))
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range rep.Problems() {
		fmt.Println("problem:", c.Name, c.Expected)
	}
	// Output:
	// verified: true
	// problem: expected-image example.com/db:v1
}
