package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

const pushRuntime = "docker.io/rancher/rke2-runtime:v1"

// pushFixture is a runtime tag with Windows 1809, ltsc2022 and Linux
// children of one upstream list, each in a bundle of its own beside a
// pause image that shares the runtime's first layer.
type pushFixture struct {
	blobs    verifytest.Blobs
	w1809    bundle.Image
	w2022    bundle.Image
	lin      bundle.Image
	pause    bundle.Image
	upstream *bundle.RawIndex
	shared   verifytest.Layer
}

func newPushFixture() *pushFixture {
	f := &pushFixture{blobs: verifytest.Blobs{}}
	f.shared = verifytest.GzipLayer(verifytest.TarLayer(9, 8192))
	img := func(n, tag string, p v1.Platform, seed int64) bundle.Image {
		own := verifytest.GzipLayer(verifytest.TarLayer(seed, 4096))
		return verifytest.Image(n, tag, p, []verifytest.Layer{f.shared, own}, f.blobs)
	}
	f.w1809 = img(pushRuntime, "v1", v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.5458"}, 1)
	f.w2022 = img(pushRuntime, "v1", v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2700"}, 2)
	f.lin = img(pushRuntime, "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, 3)
	f.pause = img("docker.io/rancher/mirrored-pause:3.6", "3.6", v1.Platform{OS: "linux", Architecture: "amd64"}, 4)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.DockerManifestList}
	for _, i := range []*bundle.Image{&f.lin, &f.w1809, &f.w2022} {
		d := i.Descriptor
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform})
	}
	raw, _ := json.Marshal(idx)
	f.upstream = &bundle.RawIndex{Descriptor: v1.Descriptor{MediaType: idx.MediaType, Size: int64(len(raw)), Digest: verifytest.Hash(raw)}, Manifest: raw}
	for _, i := range []*bundle.Image{&f.lin, &f.w1809, &f.w2022} {
		i.SourceIndex = f.upstream
	}
	return f
}

func (f *pushFixture) catalog(t *testing.T, bundles [][]bundle.Image, opts ...catalog.Option) *catalog.Catalog {
	t.Helper()
	var archives []*bundle.Archive
	for _, images := range bundles {
		var buf bytes.Buffer
		if err := bundle.Write(context.Background(), &buf, images, f.blobs, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
			t.Fatal(err)
		}
		a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		archives = append(archives, a)
	}
	c, err := catalog.New(archives, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (m *mfRegistry) pushCatalog(t *testing.T, c *catalog.Catalog, target string, opts ...PushOption) *PushReport {
	t.Helper()
	rep, err := m.client.Push(context.Background(), c, target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (m *mfRegistry) digest(t *testing.T, ref string) (v1.Hash, []byte) {
	t.Helper()
	r, err := m.client.ParseReference(m.ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r, m.client.Remote(context.Background())...)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest, d.Manifest
}

func reportFor(t *testing.T, rep *PushReport, ref string) PushedImage {
	t.Helper()
	for _, img := range rep.Images {
		if strings.HasSuffix(img.Reference, "/"+ref) {
			return img
		}
	}
	t.Fatalf("no report for %s in %+v", ref, rep.Images)
	return PushedImage{}
}

// Pushing per-version bundles one after another leaves one list at the
// tag, and the upstream list's own bytes once every child is there.
func TestPushMergesPerVersionBundles(t *testing.T) {
	f := newPushFixture()
	m := newMFRegistry(t)
	tag := "rancher/rke2-runtime:v1"

	rep := m.pushCatalog(t, f.catalog(t, [][]bundle.Image{{f.w1809, f.pause}}), m.host)
	if got, _ := m.digest(t, tag); got != f.w1809.Descriptor.Digest {
		t.Fatalf("after 1809: tag is %s, want the 1809 image %s", got, f.w1809.Descriptor.Digest)
	}
	if r := reportFor(t, rep, tag); r.Action != ActionPushed || r.Source != pushRuntime || r.Blobs != 3 || r.Uploaded+r.Mounted != 3 {
		t.Fatalf("1809 report %+v", r)
	}
	if rep.BlobsMounted != 1 || m.mounted != 1 {
		t.Fatalf("shared layer: %d mounted in the report, %d by the registry, want 1", rep.BlobsMounted, m.mounted)
	}

	rep = m.pushCatalog(t, f.catalog(t, [][]bundle.Image{{f.w2022}}), m.host)
	got, raw := m.digest(t, tag)
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil || len(idx.Manifests) != 2 || got == f.upstream.Descriptor.Digest {
		t.Fatalf("after ltsc2022: %s %s (%v), want a merged list of 2", got, raw, err)
	}
	if r := reportFor(t, rep, tag); r.Action != ActionMerged || r.Digest != got || len(r.Platforms) != 2 {
		t.Fatalf("ltsc2022 report %+v", r)
	}

	// Both bundles at once give the catalog's own merged list; the
	// registry's holds the same images, so it stays.
	m.reset()
	rep = m.pushCatalog(t, f.catalog(t, [][]bundle.Image{{f.w1809}, {f.w2022}}), m.host)
	if w := m.writes(); len(w) != 0 || reportFor(t, rep, tag).Action != ActionUnchanged {
		t.Fatalf("same two images again wrote %v; report %+v", w, reportFor(t, rep, tag))
	}

	rep = m.pushCatalog(t, f.catalog(t, [][]bundle.Image{{f.lin}}), m.host)
	got, raw = m.digest(t, tag)
	if got != f.upstream.Descriptor.Digest || !bytes.Equal(raw, f.upstream.Manifest) {
		t.Fatalf("after linux: tag is %s, want the upstream list %s byte for byte", got, f.upstream.Descriptor.Digest)
	}
	if r := reportFor(t, rep, tag); r.Action != ActionMerged || r.Digest != got {
		t.Fatalf("linux report %+v", r)
	}

	m.reset()
	all := f.catalog(t, [][]bundle.Image{{f.w1809, f.pause}, {f.w2022}, {f.lin}})
	rep = m.pushCatalog(t, all, m.host)
	if w := m.writes(); len(w) != 0 || rep.BlobsUploaded != 0 || rep.BytesUploaded != 0 {
		t.Fatalf("rerun wrote %v, report %d blobs / %d bytes uploaded", w, rep.BlobsUploaded, rep.BytesUploaded)
	}
	if r := reportFor(t, rep, tag); r.Action != ActionUnchanged {
		t.Fatalf("rerun report %+v", r)
	}
}

// One push of every bundle puts the upstream list at once; every image is
// there by digest, under the prefix and map.
func TestPushNamesAndDigests(t *testing.T) {
	f := newPushFixture()
	m := newMFRegistry(t)
	c := f.catalog(t, [][]bundle.Image{{f.w1809, f.pause}, {f.w2022}, {f.lin}}, catalog.WithMap("rancher/mirrored-pause", "mirrored/pause"))
	rep := m.pushCatalog(t, c, m.host+"/airgap")
	if got, _ := m.digest(t, "airgap/rancher/rke2-runtime:v1"); got != f.upstream.Descriptor.Digest {
		t.Fatalf("tag is %s, want upstream %s", got, f.upstream.Descriptor.Digest)
	}
	if got, _ := m.digest(t, "airgap/mirrored/pause:3.6"); got != f.pause.Descriptor.Digest {
		t.Fatalf("pause is %s, want %s", got, f.pause.Descriptor.Digest)
	}
	for _, img := range []bundle.Image{f.w1809, f.w2022, f.lin} {
		if got, raw := m.digest(t, "airgap/rancher/rke2-runtime@"+img.Descriptor.Digest.String()); got != img.Descriptor.Digest || !bytes.Equal(raw, img.Manifest) {
			t.Fatalf("child %s is %s", img.Descriptor.Digest, got)
		}
	}
	var want int64
	for _, b := range f.blobs {
		want += int64(len(b))
	}
	for _, img := range []bundle.Image{f.w1809, f.w2022, f.lin, f.pause} {
		want += int64(len(img.Config))
	}
	if distinct := len(f.blobs) + 4; rep.BytesUploaded != want || rep.BlobsUploaded != distinct || rep.BlobsMounted != 1 {
		t.Fatalf("uploaded %d bytes in %d blobs (%d mounted), want every distinct blob once: %d bytes in %d",
			rep.BytesUploaded, rep.BlobsUploaded, rep.BlobsMounted, want, distinct)
	}
	if _, err := m.client.Push(context.Background(), c, "https://"+m.host); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("target with a scheme: %v", err)
	}
}

func TestPushOnExistingTag(t *testing.T) {
	f := newPushFixture()
	c := f.catalog(t, [][]bundle.Image{{f.lin}})
	tag := "rancher/rke2-runtime:v1"
	setup := func(t *testing.T, p string) (*mfRegistry, v1.Hash) {
		m := newMFRegistry(t)
		old := m.push(t, tag, platformImage(t, p, false))
		m.reset()
		return m, old
	}
	t.Run("error", func(t *testing.T) {
		m, _ := setup(t, "linux/amd64")
		_, err := m.client.Push(context.Background(), c, m.host, WithOnExistingTag(OnExistingTagError))
		if !errors.Is(err, ErrTagExists) || len(m.writes()) != 0 {
			t.Fatalf("got %v, writes %v", err, m.writes())
		}
	})
	t.Run("skip", func(t *testing.T) {
		m, old := setup(t, "linux/amd64")
		rep := m.pushCatalog(t, c, m.host, WithOnExistingTag(OnExistingTagSkip))
		if got, _ := m.digest(t, tag); got != old || len(m.writes()) != 0 || reportFor(t, rep, tag).Action != ActionSkipped {
			t.Fatalf("tag %s (was %s), writes %v", got, old, m.writes())
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		m, _ := setup(t, "linux/arm64")
		m.pushCatalog(t, c, m.host, WithOnExistingTag(OnExistingTagOverwrite))
		if got, _ := m.digest(t, tag); got != f.lin.Descriptor.Digest {
			t.Fatalf("tag %s, want ours %s", got, f.lin.Descriptor.Digest)
		}
	})
	t.Run("merge keeps other platforms", func(t *testing.T) {
		m, old := setup(t, "linux/arm64")
		m.pushCatalog(t, c, m.host)
		_, raw := m.digest(t, tag)
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil || len(idx.Manifests) != 2 || idx.Manifests[0].Digest != f.lin.Descriptor.Digest || idx.Manifests[1].Digest != old {
			t.Fatalf("merged list %s: %v", raw, err)
		}
	})
	t.Run("merge replaces the same platform", func(t *testing.T) {
		m, _ := setup(t, "linux/amd64")
		rep := m.pushCatalog(t, c, m.host)
		if got, _ := m.digest(t, tag); got != f.lin.Descriptor.Digest || reportFor(t, rep, tag).Action != ActionOverwritten {
			t.Fatalf("tag %s, want ours %s", got, f.lin.Descriptor.Digest)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		m, old := setup(t, "linux/arm64")
		rep := m.pushCatalog(t, c, m.host, WithPushDryRun(true))
		r := reportFor(t, rep, tag)
		if got, _ := m.digest(t, tag); got != old || len(m.writes()) != 0 || r.Action != ActionMerged || r.Uploaded != 3 || r.BytesUploaded == 0 || !rep.DryRun {
			t.Fatalf("dry run changed the tag to %s or wrote %v; report %+v", got, m.writes(), r)
		}
	})
	if _, err := ParseOnExistingTag("replace"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad mode: %v", err)
	}
}

// A registry that refuses URL-bearing layer descriptors, as distribution
// does without validation.manifests.urls.allow, gets a clear error; the
// foreign layer the bundle carries was uploaded first.
func TestPushForeignLayersRejected(t *testing.T) {
	blobs := verifytest.Blobs{}
	foreign := verifytest.Foreign(verifytest.GzipLayer(verifytest.TarLayer(7, 4096)), "https://mcr.microsoft.com/v2/windows/nanoserver/blobs/sha256:0")
	img := verifytest.Image("docker.io/rancher/pause:3.6", "3.6", verifytest.Win1809, []verifytest.Layer{foreign}, blobs)
	f := &pushFixture{blobs: blobs}
	c := f.catalog(t, [][]bundle.Image{{img}})
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	var uploaded atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"urls"`)) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"invalid URL on layer"}]}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.Method == http.MethodPut && r.URL.Query().Get("digest") == verifytest.Hash(foreign.Blob).String() {
			uploaded.Store(true)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	client := newClient(t, WithInsecureRegistries(host), WithRetryBackoff(remote.Backoff{Steps: 1}))
	_, err := client.Push(context.Background(), c, host)
	if !errors.Is(err, ErrForeignLayersRejected) || !strings.Contains(err.Error(), "validation.manifests.urls.allow") || !uploaded.Load() {
		t.Fatalf("got %v (foreign layer uploaded: %v)", err, uploaded.Load())
	}
}
