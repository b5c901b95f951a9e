package serve_test

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// TestGoContainerRegistryClient pulls through go-containerregistry's
// remote package, as crane and ferry bundle do: every digest is the
// bundle's, and validate.Image rehashes every blob and diff_id.
func TestGoContainerRegistryClient(t *testing.T) {
	blobs := verifytest.Blobs{}
	w1809 := image(runtimeName, win("17763.5458"), 1, 200<<10, blobs)
	w2022 := image(runtimeName, win("20348.2700"), 2, 200<<10, blobs)
	up := verifytest.List(&w1809, &w2022)
	srv := server(t,
		openArchive(t, write(t, []bundle.Image{w1809}, blobs, bundle.Zstd)),
		openArchive(t, write(t, []bundle.Image{w2022}, blobs, bundle.Gzip)))
	host := strings.TrimPrefix(srv.URL, "http://")

	ref, err := name.ParseReference(host+"/rancher/rke2-runtime:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	// The upstream list names a linux/arm64 child no bundle holds: the tag
	// is a list merged from the two bundles' images.
	d, _ := idx.Digest()
	if d == up.Descriptor.Digest {
		t.Fatalf("tag serves the incomplete upstream list %s", d)
	}
	for _, img := range []bundle.Image{w1809, w2022} {
		p := *img.Descriptor.Platform
		got, err := remote.Image(ref, remote.WithPlatform(p))
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := got.Digest(); d != img.Descriptor.Digest {
			t.Fatalf("%s: digest %s, bundle's %s", p.OSVersion, d, img.Descriptor.Digest)
		}
		if err := validate.Image(got); err != nil {
			t.Fatalf("%s: %v", p.OSVersion, err)
		}
		byDigest, err := remote.Image(ref.Context().Digest(img.Descriptor.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		if cfg, _ := byDigest.ConfigName(); cfg != mustConfig(t, img) {
			t.Fatalf("config %s", cfg)
		}
	}
	repos, err := remote.Catalog(t.Context(), ref.Context().Registry)
	if err != nil || len(repos) != 1 || repos[0] != "rancher/rke2-runtime" {
		t.Fatalf("catalog %v %v", repos, err)
	}
	tags, err := remote.List(ref.Context())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags %v %v", tags, err)
	}
	if err := remote.Write(ref.Context().Tag("new"), mustImage(t, idx), remote.WithContext(t.Context())); err == nil {
		t.Fatal("push to a read-only registry succeeded")
	}
}

func mustConfig(t *testing.T, img bundle.Image) v1.Hash {
	t.Helper()
	m, err := img.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest
}

func mustImage(t *testing.T, idx v1.ImageIndex) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
