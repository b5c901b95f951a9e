package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/registrytest"
)

// goldenImages is every image of the sample set, Windows children with
// foreign layers and the index each was chosen from, one image under two
// tags and one by digest alone: what plan dedupes, names and lists.
func goldenImages(t *testing.T) []bundle.NamedImage {
	t.Helper()
	s, err := registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, 0, len(s.Images))
	for k := range s.Images {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	var out []bundle.NamedImage
	add := func(ref string, img v1.Image, idx v1.ImageIndex) {
		r, err := name.ParseReference("example.com/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bundle.NamedImage{Ref: r, Image: img, Index: idx})
	}
	for _, tag := range tags {
		switch x := s.Images[tag].(type) {
		case v1.Image:
			add(tag, x, nil)
		case v1.ImageIndex:
			im, err := x.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				img, err := x.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				add(tag, img, x)
			}
		}
	}
	first := out[0]
	add("rancher/again:v1", first.Image, nil)
	d, err := first.Image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	add("rancher/bydigest@"+d.String(), first.Image, nil)
	return out
}

// The bytes of a bundle are pinned: loaders and checksums published
// beside a bundle depend on them not changing with how it is planned.
func TestWriteImagesGoldenBytes(t *testing.T) {
	images := goldenImages(t)
	for c, want := range map[bundle.Compression]string{
		bundle.None: "d23fad497b6dc0cea8dcd89b7d3ad7b5848c75a9653be067fbaca5b1806e9acf",
		bundle.Gzip: "b831951b3edb47ffc583ef7424f39a005839caa1ed4cb856725bea18a6151d4a",
		bundle.Zstd: "84acbd86d1ac625a87406be79f9fd1f7a97a441b1b1af0c8da4457d7b60e3839",
	} {
		var buf bytes.Buffer
		if err := bundle.WriteImages(context.Background(), &buf, images, bundle.WithCompression(c, 0)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s (%d images, %d bytes)", c, got, want, len(images), buf.Len())
		}
	}
}
