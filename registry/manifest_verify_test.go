package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/registry/platform"
	"github.com/rancher/ferry/registry/registrytest"
)

// putList writes a hand-made list, for lists CreateIndex would refuse.
func (m *mfRegistry) putList(t *testing.T, ref string, mt types.MediaType, descs ...v1.Descriptor) {
	t.Helper()
	raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: mt, Manifests: descs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.client.ParseReference(m.ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{raw: raw, mt: mt}, m.client.Remote(context.Background())...); err != nil {
		t.Fatal(err)
	}
}

// entry is img's list entry claiming platform p.
func entry(t *testing.T, img v1.Image, p string) v1.Descriptor {
	t.Helper()
	d, err := partialDescriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	if p != "" {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		d.Platform = plat
	}
	return d
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	return v1.Descriptor{MediaType: mt, Size: size, Digest: h}, err
}

func (m *mfRegistry) verify(t *testing.T, ref, require string) *IndexReport {
	t.Helper()
	var required []platform.Target
	if require != "" {
		required = mustTargets(t, require)
	}
	report, err := m.client.VerifyIndex(context.Background(), m.ref(ref), required)
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// failed lists "check subject: detail" of each failure, for assertions.
func failed(r *IndexReport) string {
	var out []string
	for _, c := range r.Failed() {
		out = append(out, c.Name+" "+c.Subject+": "+c.Detail)
	}
	return strings.Join(out, "\n")
}

func wantFailures(t *testing.T, r *IndexReport, substrings ...string) {
	t.Helper()
	if r.OK || r.Problems != len(r.Failed()) {
		t.Fatalf("report OK=%v problems=%d failed=%d", r.OK, r.Problems, len(r.Failed()))
	}
	got := failed(r)
	for _, s := range substrings {
		if !strings.Contains(got, s) {
			t.Errorf("failures lack %q:\n%s", s, got)
		}
	}
}

func TestVerifyIndexMissingChild(t *testing.T) {
	m := newMFRegistry(t)
	amd := m.push(t, "app:amd64", platformImage(t, "linux/amd64", false))
	arm := m.push(t, "app:arm64", platformImage(t, "linux/arm64", false))
	if _, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), []string{m.ref("app:amd64"), m.ref("app:arm64")}); err != nil {
		t.Fatal(err)
	}
	r, _ := m.client.ParseReference(m.ref("app@" + arm.String()))
	if err := remote.Delete(r, m.client.Remote(context.Background())...); err != nil {
		t.Fatal(err)
	}
	report := m.verify(t, "app:multi", "linux/amd64,linux/arm64")
	wantFailures(t, report, "manifest : ", "MANIFEST_UNKNOWN")
	if n := len(report.Failed()); n != 1 {
		t.Errorf("want only the missing child flagged, got:\n%s", failed(report))
	}
	for _, c := range report.Checks {
		if c.Digest == amd.String() && !c.OK {
			t.Errorf("the present child failed %+v", c)
		}
	}
}

func TestVerifyIndexWrongOSVersion(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	img := mfSample.Images[registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag+"-windows-1809"].(v1.Image)
	m.putList(t, registrytest.SampleRuntime+":lying", types.DockerManifestList, entry(t, img, "windows/amd64:10.0.20348.2322"))
	report := m.verify(t, registrytest.SampleRuntime+":lying", "windows/amd64:1809")
	wantFailures(t, report,
		`required windows/amd64:10.0.17763: missing; the list has windows/amd64:10.0.20348.2322`,
		`config-platform : os.version "10.0.20348.2322" in the list, "10.0.17763.5458" in the config`)
}

func TestVerifyIndexDuplicateAndUnknownPlatforms(t *testing.T) {
	m := newMFRegistry(t)
	a, b, c := platformImage(t, "linux/amd64", false), platformImage(t, "linux/amd64", false), platformImage(t, "linux/arm64", false)
	m.push(t, "app:a", a)
	m.push(t, "app:b", b)
	m.push(t, "app:c", c)
	m.putList(t, "app:dup", types.DockerManifestList, entry(t, a, "linux/amd64"), entry(t, b, "linux/amd64"), entry(t, c, ""))
	report := m.verify(t, "app:dup", "linux/amd64")
	wantFailures(t, report, "required linux/amd64: present 2 times", "unique : 2 entries are for linux/amd64",
		"known-platform : entry has no usable platform", "config-platform : entry has no platform; config says linux/arm64")
}

func TestVerifyIndexWrongSizeAndMediaType(t *testing.T) {
	m := newMFRegistry(t)
	img := platformImage(t, "linux/amd64", false)
	m.push(t, "app:a", img)
	d := entry(t, img, "linux/amd64")
	d.Size++
	d.MediaType = types.OCIManifestSchema1
	m.putList(t, "app:bad", types.OCIImageIndex, d)
	report := m.verify(t, "app:bad", "")
	wantFailures(t, report, "size : size", "media-type : entry says application/vnd.oci.image.manifest.v1+json, manifest says application/vnd.docker.distribution.manifest.v2+json")
}

func TestVerifyIndexMissingBlobs(t *testing.T) {
	m := newMFRegistry(t)
	img := platformImage(t, "linux/amd64", false)
	m.push(t, "src:a", img)
	// Only the manifest goes to the other repository, as a copy that
	// forgot the blobs would leave it.
	r, _ := m.client.ParseReference(m.ref("dst:a"))
	if err := remote.Put(r, img, m.client.Remote(context.Background())...); err != nil {
		t.Fatal(err)
	}
	m.putList(t, "dst:list", types.DockerManifestList, entry(t, img, "linux/amd64"))
	report := m.verify(t, "dst:list", "linux/amd64")
	cf, _ := img.ConfigName()
	wantFailures(t, report, "blob config "+cf.String())
	blobs := 0
	for _, c := range report.Failed() {
		if c.Name == CheckBlob {
			blobs++
		}
	}
	if blobs != 2 {
		t.Errorf("want config and layer missing:\n%s", failed(report))
	}
}

func TestVerifyIndexForeignLayerURLs(t *testing.T) {
	m := newMFRegistry(t)
	foreign := func(urls ...string) v1.Image {
		l, err := random.Layer(256, types.DockerForeignLayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.Append(platformImage(t, "windows/amd64:10.0.17763.1", false),
			mutate.Addendum{Layer: l, MediaType: types.DockerForeignLayer, URLs: urls})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	plain, none := foreign("http://example.com/layer"), foreign()
	m.push(t, "win:plain", plain)
	m.push(t, "win:none", none)
	m.putList(t, "win:list", types.DockerManifestList,
		entry(t, plain, "windows/amd64:10.0.17763.1"), entry(t, none, "windows/amd64:10.0.20348.1"))
	report := m.verify(t, "win:list", "")
	wantFailures(t, report, `URL "http://example.com/layer" is not https`, "foreign layer without URLs")
}

func TestVerifyIndexWindowsWithoutOSVersion(t *testing.T) {
	m := newMFRegistry(t)
	img := platformImage(t, "windows/amd64", false)
	m.push(t, "win:scratch", img)
	m.putList(t, "win:list", types.DockerManifestList, entry(t, img, "windows/amd64"))
	report := m.verify(t, "win:list", "windows/amd64:1809")
	wantFailures(t, report, "missing; the list has windows/amd64; entries without os.version")
}

func TestVerifyIndexNotAList(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "app:one", platformImage(t, "linux/amd64", false))
	report := m.verify(t, "app:one", "linux/amd64")
	wantFailures(t, report, "list : not a manifest list or index")
}

func TestVerifyIndexMissingListIsAnError(t *testing.T) {
	m := newMFRegistry(t)
	if _, err := m.client.VerifyIndex(context.Background(), m.ref("nope:v1"), nil); err == nil {
		t.Fatal("verifying a missing list succeeded")
	}
}
