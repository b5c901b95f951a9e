package verify_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// twoImages are two Windows images of random layers sharing a foreign base
// layer, registered in blobs.
func twoImages(t testing.TB, blobs verifytest.Blobs) []bundle.Image {
	base := randomImage(t, 64<<10, 1)
	baseLayers, _ := base.Layers()
	rt := appendForeign(t, withPlatform(t, randomImage(t, 300<<10, 2), "windows", "10.0.17763.5458"), baseLayers[0])
	pz := appendForeign(t, withPlatform(t, randomImage(t, 20<<10, 1), "windows", "10.0.17763.5458"), baseLayers[0])
	return []bundle.Image{
		testImage(t, blobs, rt, "docker.io/rancher/rke2-runtime:v1", "v1"),
		testImage(t, blobs, pz, "docker.io/rancher/mirrored-pause:3.6", "3.6"),
	}
}

// testImage turns a v1.Image into a bundle.Image, registering its layers.
func testImage(t testing.TB, blobs verifytest.Blobs, img v1.Image, name, tag string) bundle.Image {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	mt, _ := img.MediaType()
	cf, _ := img.ConfigFile()
	layers, _ := img.Layers()
	for _, l := range layers {
		h, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		blobs[h] = b
	}
	p := &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, OSVersion: cf.OSVersion}
	return bundle.Image{Name: name, Tag: tag, Manifest: raw, Config: cfg,
		Descriptor: v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest, Platform: p}}
}

func randomImage(t testing.TB, layerSize int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withPlatform sets the config's os/arch, keeping the layers.
func withPlatform(t testing.TB, img v1.Image, os, osVersion string) v1.Image {
	t.Helper()
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.OSVersion = os, "amd64", osVersion
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// appendForeign adds a non-distributable layer with a URL.
func appendForeign(t testing.TB, img v1.Image, l v1.Layer) v1.Image {
	t.Helper()
	h, _ := l.Digest()
	out, err := mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.DockerForeignLayer, URLs: []string{"https://mcr.microsoft.com/v2/x/blobs/" + h.String()}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t testing.TB, images []bundle.Image, blobs bundle.Blobs, opts ...bundle.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 0 {
		t.Fatalf("%d files left in %s", len(es), dir)
	}
}
