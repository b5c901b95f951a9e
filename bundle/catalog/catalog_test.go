package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func win(build string) v1.Platform {
	return v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0." + build}
}

var linux = v1.Platform{OS: "linux", Architecture: "amd64"}

// image makes a one-layer image of a platform; seed makes layers differ.
func image(name string, p v1.Platform, seed int64, blobs verifytest.Blobs) bundle.Image {
	l := verifytest.GzipLayer(verifytest.TarLayer(seed, 4096))
	tag := name[len(name)-2:]
	return verifytest.Image(name, tag, p, []verifytest.Layer{l}, blobs)
}

// list makes the upstream list of images, as a registry serves it.
func list(images ...*bundle.Image) *bundle.RawIndex {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.DockerManifestList}
	for _, img := range images {
		d := img.Descriptor
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform})
	}
	raw, _ := json.Marshal(idx)
	src := &bundle.RawIndex{Descriptor: v1.Descriptor{MediaType: idx.MediaType, Size: int64(len(raw)), Digest: verifytest.Hash(raw)}, Manifest: raw}
	for _, img := range images {
		img.SourceIndex = src
	}
	return src
}

func open(t *testing.T, images []bundle.Image, blobs verifytest.Blobs) *bundle.Archive {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
		t.Fatal(err)
	}
	a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

const runtime = "docker.io/rancher/rke2-runtime:v1"

func TestPerVersionBundlesServeTheUpstreamList(t *testing.T) {
	blobs := verifytest.Blobs{}
	w1809, w2022 := image(runtime, win("17763.5458"), 1, blobs), image(runtime, win("20348.2700"), 2, blobs)
	up := list(&w1809, &w2022)
	c, err := catalog.New([]*bundle.Archive{open(t, []bundle.Image{w1809}, blobs), open(t, []bundle.Image{w2022}, blobs)})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repositories(); len(got) != 1 || got[0] != "rancher/rke2-runtime" {
		t.Fatalf("repositories %v", got)
	}
	m, err := c.Manifest("rancher/rke2-runtime", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != up.Descriptor.Digest || !bytes.Equal(m.Raw, up.Manifest) || !m.Upstream || !m.Complete() {
		t.Fatalf("tag serves %s (upstream %v), want the upstream list %s", m.Digest, m.Upstream, up.Descriptor.Digest)
	}
	// One bundle alone: the tag is its image; the list stays reachable by digest.
	one, err := catalog.New([]*bundle.Archive{open(t, []bundle.Image{w1809}, blobs)})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := one.Manifest("rancher/rke2-runtime", "v1"); m.Digest != w1809.Descriptor.Digest {
		t.Fatalf("single bundle tag serves %s, want the image %s", m.Digest, w1809.Descriptor.Digest)
	}
	byDigest, err := one.Manifest("rancher/rke2-runtime", up.Descriptor.Digest.String())
	if err != nil || byDigest.Complete() || len(byDigest.Children) != 1 {
		t.Fatalf("list by digest: %v, %+v", err, byDigest)
	}
}

func TestMergedListWhenUpstreamIsIncomplete(t *testing.T) {
	blobs := verifytest.Blobs{}
	w1809, w2022, lin := image(runtime, win("17763.5458"), 1, blobs), image(runtime, win("20348.2700"), 2, blobs), image(runtime, linux, 3, blobs)
	up := list(&w1809, &w2022, &lin)
	c, err := catalog.New([]*bundle.Archive{open(t, []bundle.Image{w1809}, blobs), open(t, []bundle.Image{w2022}, blobs)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest("rancher/rke2-runtime", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest == up.Descriptor.Digest || m.Upstream || m.MediaType != types.DockerManifestList || len(m.Children) != 2 {
		t.Fatalf("tag serves %s %s with %d children, want a merged list of 2", m.Digest, m.MediaType, len(m.Children))
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(m.Raw))
	if err != nil || len(idx.Manifests) != 2 || idx.Manifests[0].Platform.OSVersion == "" {
		t.Fatalf("merged list %s: %v", m.Raw, err)
	}
	if got, err := c.Manifest("rancher/rke2-runtime", m.Digest.String()); err != nil || got != m {
		t.Fatalf("merged list by digest: %v", err)
	}
}

func TestConflictingImagesForOnePlatform(t *testing.T) {
	blobs := verifytest.Blobs{}
	a, b := image(runtime, linux, 1, blobs), image(runtime, linux, 2, blobs)
	_, err := catalog.New([]*bundle.Archive{open(t, []bundle.Image{a}, blobs), open(t, []bundle.Image{b}, blobs)})
	if !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("got %v", err)
	}
}

func TestNamesAndBlobs(t *testing.T) {
	blobs := verifytest.Blobs{}
	img := image("127.0.0.1:5000/rancher/pause:36", linux, 1, blobs)
	a := open(t, []bundle.Image{img}, blobs)
	c, err := catalog.New([]*bundle.Archive{a},
		catalog.WithMap("rancher", "mirrored/rancher"), catalog.WithPrefix("airgap"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repositories(); len(got) != 1 || got[0] != "airgap/mirrored/rancher/pause" {
		t.Fatalf("repositories %v", got)
	}
	if tags, _ := c.Tags("airgap/mirrored/rancher/pause"); len(tags) != 1 || tags[0] != "36" {
		t.Fatalf("tags %v", tags)
	}
	m, _ := img.Parsed()
	for _, d := range append(m.Layers, m.Config) {
		rc, size, err := c.Blob(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || int64(len(got)) != size || verifytest.Hash(got) != d.Digest {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
		if _, _, ok := c.BlobAt(d.Digest); !ok {
			t.Fatalf("blob %s has no random access", d.Digest)
		}
		in, off, ok := c.Position(d.Digest)
		if want, _, _ := a.BlobOffset(d.Digest); !ok || in != a || off != want || off == 0 {
			t.Fatalf("blob %s at %d in %p (%v), want %d in %p", d.Digest, off, in, ok, want, a)
		}
	}
	if _, _, ok := c.Position(v1.Hash{Algorithm: "sha256", Hex: "00"}); ok {
		t.Fatal("unknown blob has a position")
	}
	if _, _, err := c.Blob(v1.Hash{Algorithm: "sha256", Hex: "00"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown blob: %v", err)
	}
	if _, err := c.Manifest("nope", "1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown repo: %v", err)
	}
	if _, err := catalog.New(nil, catalog.WithPrefix("UPPER")); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

func TestNamesListsAndManifests(t *testing.T) {
	blobs := verifytest.Blobs{}
	w1809, w2022 := image(runtime, win("17763.5458"), 1, blobs), image(runtime, win("20348.2700"), 2, blobs)
	up := list(&w1809, &w2022)
	c, err := catalog.New([]*bundle.Archive{open(t, []bundle.Image{w1809}, blobs), open(t, []bundle.Image{w1809}, blobs)})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Manifests("rancher/rke2-runtime")
	if err != nil || len(ms) != 2 {
		t.Fatalf("manifests %d: %v", len(ms), err)
	}
	img, _ := c.Manifest("rancher/rke2-runtime", w1809.Descriptor.Digest.String())
	if len(img.Names) != 2 || img.Names[0] != runtime {
		t.Fatalf("names %v, want the archive name once per archive", img.Names)
	}
	if img.List == nil || img.List.Digest != up.Descriptor.Digest || len(img.List.Children) != 1 || img.List.Complete() {
		t.Fatalf("list %+v, want the incomplete upstream list", img.List)
	}
	if _, err := c.Manifests("nope"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown repo: %v", err)
	}
}

// An OCI archive whose ref.name is only a tag names no repository: the
// image is listed as unnamed, unless WithRepository gives one; an image
// with no name at all goes there by digest.
func TestBareTagsAndWithRepository(t *testing.T) {
	blobs := verifytest.Blobs{}
	tagged, untagged := image("example.com/a:v1", linux, 1, blobs), image("example.com/b:v2", linux, 2, blobs)
	entries := verifytest.EditJSON(verifytest.Entries(verifytest.Write([]bundle.Image{tagged, untagged}, blobs, false)),
		bundle.IndexFile, func(v any) any {
			ms := v.(map[string]any)["manifests"].([]any)
			ms[0].(map[string]any)["annotations"] = map[string]any{bundle.AnnotationRefName: "v1"}
			delete(ms[1].(map[string]any), "annotations")
			return v
		})
	raw := verifytest.Tar(entries)
	a, err := bundle.Open(context.Background(), bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	c, err := catalog.New([]*bundle.Archive{a})
	if err != nil {
		t.Fatal(err)
	}
	un := c.Unnamed()
	if len(c.Repositories()) != 0 || len(un) != 2 || un[0].Tag != "v1" || un[0].Digest != tagged.Descriptor.Digest ||
		un[1].Tag != "" || un[1].Digest != untagged.Descriptor.Digest || un[1].Archive != 0 {
		t.Fatalf("repositories %v, unnamed %+v", c.Repositories(), un)
	}

	c, err = catalog.New([]*bundle.Archive{a}, catalog.WithRepository("airgap/app"), catalog.WithPrefix("mirror"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Repositories(); len(got) != 1 || got[0] != "mirror/airgap/app" || len(c.Unnamed()) != 0 {
		t.Fatalf("repositories %v, unnamed %+v", got, c.Unnamed())
	}
	if m, err := c.Manifest("mirror/airgap/app", "v1"); err != nil || m.Digest != tagged.Descriptor.Digest {
		t.Fatalf("tag v1: %v", err)
	}
	if tags, _ := c.Tags("mirror/airgap/app"); len(tags) != 1 {
		t.Fatalf("tags %v, want only v1", tags)
	}
	if _, err := c.Manifest("mirror/airgap/app", untagged.Descriptor.Digest.String()); err != nil {
		t.Fatalf("untagged image by digest: %v", err)
	}
	if _, err := catalog.New(nil, catalog.WithRepository("Bad Name")); err == nil {
		t.Fatal("bad repository accepted")
	}
}
