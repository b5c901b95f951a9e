package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// countingImage counts how often each layer's bytes are opened.
type countingImage struct {
	v1.Image
	opened map[v1.Hash]int
}

func (c countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	return countingLayer{Layer: l, n: c.opened}, err
}

type countingLayer struct {
	v1.Layer
	n map[v1.Hash]int
}

func (l countingLayer) Compressed() (io.ReadCloser, error) {
	h, _ := l.Digest()
	l.n[h]++
	return l.Layer.Compressed()
}

func TestWriteImagesRoundTrip(t *testing.T) {
	base := verifytest.RandomImage(t, 8<<10, 1)
	baseLayers, _ := base.Layers()
	opened := map[v1.Hash]int{}
	rt := countingImage{verifytest.WithPlatform(t, appendLayer(t, verifytest.RandomImage(t, 16<<10, 2), baseLayers[0]), "linux", ""), opened}
	pz := countingImage{appendLayer(t, verifytest.RandomImage(t, 4<<10, 1), baseLayers[0]), opened}
	rtDigest, _ := rt.Digest()
	pinned, err := name.ParseReference("docker.io/rancher/rke2-runtime:v1@" + rtDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = bundle.WriteImages(context.Background(), &buf, []bundle.NamedImage{
		{Ref: pinned, Image: rt},
		{Ref: name.MustParseReference("rancher/mirrored-pause:3.6"), Image: pz},
	}, bundle.WithCompression(bundle.Zstd, 0))
	if err != nil {
		t.Fatal(err)
	}
	for h, n := range opened {
		if n != 1 {
			t.Errorf("layer %s opened %d times", h, n)
		}
	}
	if len(opened) != 4 {
		t.Errorf("opened %d distinct layers, want 4", len(opened))
	}
	c, err := bundle.ReadContents(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range c.Index.Manifests {
		names = append(names, d.Annotations[bundle.AnnotationContainerdName])
	}
	if want := []string{"docker.io/rancher/rke2-runtime:v1", "docker.io/rancher/mirrored-pause:3.6"}; !equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if p := c.Index.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
		t.Errorf("platform from the config: %v", p)
	}
	opener := func() (io.ReadCloser, error) {
		rc, _, err := bundle.Decompress(bytes.NewReader(buf.Bytes()))
		return rc, err
	}
	for _, img := range []v1.Image{rt, pz} {
		compareLoaded(t, opener, img)
	}
}

// compareLoaded finds img in the bundle through ggcr's tarball reader and
// checks its manifest and layers survived byte for byte.
func compareLoaded(t *testing.T, opener tarball.Opener, img v1.Image) {
	t.Helper()
	want, _ := img.Digest()
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m {
		tag, _ := name.NewTag(d.RepoTags[0])
		loaded, err := tarball.Image(opener, &tag)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := loaded.Digest(); got != want {
			continue
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			h, _ := l.Digest()
			ll, err := loaded.LayerByDigest(h)
			if err != nil {
				t.Fatalf("layer %s: %v", h, err)
			}
			rc, _ := ll.Compressed()
			got, _, _ := v1.SHA256(rc)
			rc.Close()
			if got != h {
				t.Errorf("layer %s reads back as %s", h, got)
			}
		}
		return
	}
	t.Errorf("image %s not in the bundle", want)
}

func TestWriteImagesSkipsForeignLayers(t *testing.T) {
	base := verifytest.RandomImage(t, 8<<10, 1)
	baseLayers, _ := base.Layers()
	foreign, _ := baseLayers[0].Digest()
	opened := map[v1.Hash]int{}
	img := countingImage{verifytest.AppendForeign(t, verifytest.WithPlatform(t, verifytest.RandomImage(t, 4<<10, 1), "windows", "10.0.17763.1"), baseLayers[0]), opened}
	ref := name.MustParseReference("rancher/pause:3.6")
	var buf bytes.Buffer
	if err := bundle.WriteImages(context.Background(), &buf, []bundle.NamedImage{{Ref: ref, Image: img}}, bundle.WithSkipForeignLayers(true)); err != nil {
		t.Fatal(err)
	}
	if opened[foreign] != 0 || len(opened) != 1 {
		t.Errorf("opened %v; the foreign layer should stay closed", opened)
	}
	for _, e := range readEntries(t, buf.Bytes()) {
		if e.name == bundle.BlobPath(foreign) {
			t.Error("foreign layer stored")
		}
	}
	buf.Reset()
	if err := bundle.WriteImages(context.Background(), &buf, []bundle.NamedImage{{Ref: ref, Image: img}}); err != nil {
		t.Fatal(err)
	}
	if opened[foreign] != 1 {
		t.Errorf("without skipping, the foreign layer was opened %d times", opened[foreign])
	}
}

func TestWriteImagesRefusesNil(t *testing.T) {
	img := verifytest.RandomImage(t, 1<<10, 1)
	ref := name.MustParseReference("rancher/pause:3.6")
	for what, entries := range map[string][]bundle.NamedImage{
		"nil image": {{Ref: ref}},
		"nil ref":   {{Image: img}},
	} {
		if err := bundle.WriteImages(context.Background(), io.Discard, entries); !errors.Is(err, bundle.ErrNilArgument) {
			t.Errorf("%s: %v", what, err)
		}
	}
	if err := bundle.WriteImages(context.Background(), io.Discard, nil); !errors.Is(err, bundle.ErrNoImages) {
		t.Errorf("no images: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRefName(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for ref, want := range map[string][2]string{
		"rancher/pause:3.6":               {"docker.io/rancher/pause:3.6", "3.6"},
		"index.docker.io/library/busybox": {"docker.io/library/busybox:latest", "latest"},
		"localhost:5000/x:v1@" + d:        {"localhost:5000/x:v1", "v1"},
		"registry.k8s.io/pause@" + d:      {"registry.k8s.io/pause@" + d, ""},
	} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if n, tag := bundle.RefName(r); n != want[0] || tag != want[1] {
			t.Errorf("%s: %q %q, want %q %q", ref, n, tag, want[0], want[1])
		}
	}
}

func TestWriteImagesKeepsSourceIndex(t *testing.T) {
	idx, err := random.Index(1<<10, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	child, err := idx.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	listDigest, _ := idx.Digest()
	var buf bytes.Buffer
	err = bundle.WriteImages(context.Background(), &buf, []bundle.NamedImage{
		{Ref: name.MustParseReference("rancher/pause:3.6"), Image: child, Index: idx},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := bundle.ReadContents(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Index.Manifests[0].Annotations[bundle.AnnotationSourceDigest]; got != listDigest.String() {
		t.Errorf("source digest annotation %q, want %s", got, listDigest)
	}
	// An index that does not list the image is refused, as Write does.
	other, _ := random.Index(1<<10, 1, 1)
	err = bundle.WriteImages(context.Background(), io.Discard, []bundle.NamedImage{
		{Ref: name.MustParseReference("rancher/pause:3.6"), Image: child, Index: other},
	})
	if err == nil {
		t.Error("an index not listing the image was accepted")
	}
}
