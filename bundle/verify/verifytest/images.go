package verifytest

import (
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

// ImageOf is bundle.FromImage for tests: it also keeps the image's layers
// in blobs, so bundle.Write can stream them.
func ImageOf(t testing.TB, blobs Blobs, img v1.Image, ref string) bundle.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	out, err := bundle.FromImage(r, img)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		blobs[h] = b
	}
	return out
}

// RandomImage is random.Image for tests.
func RandomImage(t testing.TB, layerSize, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WithPlatform sets the config's os and os.version (architecture amd64),
// keeping the layers.
func WithPlatform(t testing.TB, img v1.Image, os, osVersion string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.OSVersion = os, "amd64", osVersion
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AppendForeign adds a non-distributable layer with a URL.
func AppendForeign(t testing.TB, img v1.Image, l v1.Layer) v1.Image {
	t.Helper()
	h, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.DockerForeignLayer,
		URLs: []string{"https://mcr.microsoft.com/v2/x/blobs/" + h.String()}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WindowsPair is a runtime and a pause image of random layers sharing one
// foreign base layer, as Windows images do, with their layers in blobs.
func WindowsPair(t testing.TB, blobs Blobs) []bundle.Image {
	t.Helper()
	base := RandomImage(t, 64<<10, 1)
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	windows := func(size, layers int64) v1.Image {
		return AppendForeign(t, WithPlatform(t, RandomImage(t, size, layers), "windows", "10.0.17763.5458"), baseLayers[0])
	}
	return []bundle.Image{
		ImageOf(t, blobs, windows(300<<10, 2), "docker.io/rancher/rke2-runtime:v1"),
		ImageOf(t, blobs, windows(20<<10, 1), "docker.io/rancher/mirrored-pause:3.6"),
	}
}
