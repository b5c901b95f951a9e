package registry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/registry/registrytest"
)

func TestCreateIndexDockerFromPerPlatformTags(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	target := m.ref(registrytest.SampleRuntime + ":v1.31.2")
	ctx := context.Background()
	created, err := m.client.CreateIndex(ctx, target, registrytest.SampleListSources(m.host))
	if err != nil {
		t.Fatal(err)
	}
	if created.MediaType != types.DockerManifestList || !created.Pushed {
		t.Fatalf("media type %s, pushed %v", created.MediaType, created.Pushed)
	}
	want := "linux/amd64 windows/amd64:10.0.17763.5458 windows/amd64:10.0.20348.2322 windows/amd64:10.0.26100.2894"
	if got := platforms(created.Manifests); got != want {
		t.Fatalf("platforms %q, want %q", got, want)
	}
	for _, d := range created.Manifests {
		if d.MediaType != types.DockerManifestSchema2 || d.Size == 0 {
			t.Errorf("entry %+v", d)
		}
	}
	got, err := m.client.InspectIndex(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != created.Digest || !bytes.Equal(got.Raw, created.Raw) {
		t.Fatalf("registry has %s, created %s", got.Digest, created.Digest)
	}
	if line := got.PromotionLine(); line != `"`+created.Digest.String()+`": ["v1.31.2"]` {
		t.Errorf("promotion line %s", line)
	}
	report, err := m.client.VerifyIndex(ctx, target, registrytest.SampleListRequire())
	if err != nil {
		t.Fatal(err)
	}
	required := 0
	for _, c := range report.Checks {
		if c.Name == CheckRequired {
			required++
		}
	}
	if !report.OK || required != 4 {
		t.Fatalf("verify: %d required checks, failed %+v", required, report.Failed())
	}
}

func TestCreateIndexOCI(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "app:amd64", platformImage(t, "linux/amd64", true))
	m.push(t, "app:arm64", platformImage(t, "linux/arm64/v8", true))
	created, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), []string{m.ref("app:amd64"), m.ref("app:arm64")})
	if err != nil {
		t.Fatal(err)
	}
	if created.MediaType != types.OCIImageIndex {
		t.Fatalf("media type %s", created.MediaType)
	}
	if got := platforms(created.Manifests); got != "linux/amd64 linux/arm64/v8" {
		t.Fatalf("platforms %s", got)
	}
	if report, err := m.client.VerifyIndex(context.Background(), m.ref("app:multi"), mustTargets(t, "linux/amd64,linux/arm64")); err != nil || !report.OK {
		t.Fatalf("verify: %v %+v", err, report)
	}
}

func TestCreateIndexFormatOCIFromDockerChildren(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	created, err := m.client.CreateIndex(context.Background(), m.ref("rke2/oci:v1"), sampleTags(m, "linux-amd64", "windows-1809"),
		WithIndexFormat(IndexFormatOCI))
	if err != nil {
		t.Fatal(err)
	}
	if created.MediaType != types.OCIImageIndex || !strings.Contains(m.warn.String(), "OCI index with 2 Docker manifests") {
		t.Fatalf("media type %s, warnings %q", created.MediaType, m.warn)
	}
}

func TestCreateIndexRefusesMixedMediaTypes(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "app:amd64", platformImage(t, "linux/amd64", false))
	m.push(t, "app:arm64", platformImage(t, "linux/arm64", true))
	m.reset()
	srcs := []string{m.ref("app:amd64"), m.ref("app:arm64")}
	_, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), srcs)
	if !errors.Is(err, ErrMixedMediaTypes) {
		t.Fatalf("got %v, want ErrMixedMediaTypes", err)
	}
	if w := m.writes(); len(w) != 0 {
		t.Fatalf("refused list still wrote %v", w)
	}
	created, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), srcs, WithIndexFormat(IndexFormatDocker))
	if err != nil || created.MediaType != types.DockerManifestList {
		t.Fatalf("explicit format: %v %v", err, created)
	}
}

func TestCreateIndexFromListWithPlatformFilter(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	src := []string{m.ref(registrytest.SampleRuntime + ":" + registrytest.SampleRuntimeTag)}
	// The sample list carries two 1809 revisions: without a filter that is
	// two entries for one build.
	_, err := m.client.CreateIndex(context.Background(), m.ref("copy/runtime:all"), src)
	if !errors.Is(err, ErrDuplicatePlatform) {
		t.Fatalf("got %v, want ErrDuplicatePlatform", err)
	}
	created, err := m.client.CreateIndex(context.Background(), m.ref("copy/runtime:v1"), src,
		WithIndexPlatforms(mustTargets(t, "windows/amd64:1809,linux/amd64")...))
	if err != nil {
		t.Fatal(err)
	}
	if got := platforms(created.Manifests); got != "windows/amd64:10.0.17763.5458 linux/amd64" {
		t.Fatalf("platforms %s: want the highest 1809 revision and linux", got)
	}
	if !strings.Contains(created.Sources[0], registrytest.SampleRuntime+"@sha256:") {
		t.Errorf("source %s should name the child by digest", created.Sources[0])
	}
	_, err = m.client.CreateIndex(context.Background(), m.ref("copy/runtime:v2"), src, WithIndexPlatforms(mustTargets(t, "linux/arm64")...))
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("got %v, want ErrNoMatchingPlatform", err)
	}
}

func TestCreateIndexRefusesDuplicatePlatform(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "app:a", platformImage(t, "linux/amd64", false))
	m.push(t, "app:b", platformImage(t, "linux/amd64", false))
	_, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), []string{m.ref("app:a"), m.ref("app:b")})
	if !errors.Is(err, ErrDuplicatePlatform) || !strings.Contains(err.Error(), "app:b") {
		t.Fatalf("got %v, want ErrDuplicatePlatform naming both sources", err)
	}
	// The same image twice is one entry, not a conflict.
	created, err := m.client.CreateIndex(context.Background(), m.ref("app:multi"), []string{m.ref("app:a"), m.ref("app:a")})
	if err != nil || len(created.Manifests) != 1 {
		t.Fatalf("same image twice: %v %+v", err, created)
	}
}

func TestCreateIndexWindowsRevisionsAreOneBuild(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "win:a", platformImage(t, "windows/amd64:10.0.17763.5458", false))
	m.push(t, "win:b", platformImage(t, "windows/amd64:10.0.17763.4010", false))
	_, err := m.client.CreateIndex(context.Background(), m.ref("win:multi"), []string{m.ref("win:a"), m.ref("win:b")})
	if !errors.Is(err, ErrDuplicatePlatform) {
		t.Fatalf("got %v, want ErrDuplicatePlatform", err)
	}
}

func TestCreateIndexDryRunPushesNothing(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	target := m.ref("other/runtime:v1")
	created, err := m.client.CreateIndex(context.Background(), target, sampleTags(m, "linux-amd64", "windows-ltsc2022"), WithIndexDryRun(true))
	if err != nil {
		t.Fatal(err)
	}
	if created.Pushed || len(created.Manifests) != 2 || created.Digest.Hex == "" {
		t.Fatalf("dry run result %+v", created)
	}
	if w := m.writes(); len(w) != 0 {
		t.Fatalf("dry run wrote %v", w)
	}
	if _, err := m.client.InspectIndex(context.Background(), target); err == nil {
		t.Fatal("dry run created the tag")
	}
	// The real run produces exactly the list the dry run showed.
	real, err := m.client.CreateIndex(context.Background(), target, sampleTags(m, "linux-amd64", "windows-ltsc2022"))
	if err != nil || real.Digest != created.Digest {
		t.Fatalf("real run %v: digest %v, dry run said %s", err, real, created.Digest)
	}
}

func TestCreateIndexCopiesChildrenFromAnotherRepo(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	target := m.ref("mirror/rke2-runtime:v1.31.2")
	created, err := m.client.CreateIndex(context.Background(), target, sampleTags(m, "linux-amd64", "windows-1809"))
	if err != nil {
		t.Fatal(err)
	}
	// Every blob (2 configs, 2 layers, no foreign base) arrives by mount.
	if m.mounted != 4 {
		t.Errorf("%d blobs mounted, want 4: %v", m.mounted, m.writes())
	}
	for _, w := range m.writes() {
		if strings.HasPrefix(w, "PATCH ") {
			t.Errorf("blob uploaded rather than mounted: %s", w)
		}
	}
	report, err := m.client.VerifyIndex(context.Background(), target, mustTargets(t, "linux/amd64,windows/amd64:1809"))
	if err != nil || !report.OK {
		t.Fatalf("verify: %v %+v", err, report.Failed())
	}
	if len(created.Manifests) != 2 {
		t.Fatalf("entries %+v", created.Manifests)
	}
}

func TestCreateIndexForeignLayers(t *testing.T) {
	for _, allow := range []bool{false, true} {
		m := newMFRegistry(t).withSample(t)
		target := m.ref("mirror/runtime:win")
		if _, err := m.client.CreateIndex(context.Background(), target, sampleTags(m, "windows-1809"), WithIndexNondistributable(allow)); err != nil {
			t.Fatal(err)
		}
		base := sampleForeignLayer(t, registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag+"-windows-1809")
		if got := m.hasBlob(t, "mirror/runtime", base.Digest); got != allow {
			t.Errorf("allow-nondistributable=%v: foreign layer copied = %v", allow, got)
		}
		// Either way the list verifies: pullers take the layer from its URL.
		report, err := m.client.VerifyIndex(context.Background(), target, nil)
		if err != nil || !report.OK {
			t.Fatalf("verify: %v %+v", err, report.Failed())
		}
		if !hasCheck(report, CheckForeignURLs, true) {
			t.Errorf("no foreign-urls check in %+v", report.Checks)
		}
	}
}

func TestCreateIndexReportsMissingChild(t *testing.T) {
	m := newMFRegistry(t).withSample(t)
	m.failListPut = true
	_, err := m.client.CreateIndex(context.Background(), m.ref("x/y:v1"), sampleTags(m, "linux-amd64"))
	if !errors.Is(err, ErrMissingChild) {
		t.Fatalf("got %v, want ErrMissingChild", err)
	}
}

func TestCreateIndexNeedsATag(t *testing.T) {
	m := newMFRegistry(t)
	_, err := m.client.CreateIndex(context.Background(), m.ref("x/y@sha256:"+strings.Repeat("a", 64)), []string{m.ref("x/y:v1")})
	if !errors.Is(err, ErrBadReference) {
		t.Fatalf("got %v", err)
	}
}

func TestInspectIndexRefusesImage(t *testing.T) {
	m := newMFRegistry(t)
	m.push(t, "app:one", platformImage(t, "linux/amd64", false))
	if _, err := m.client.InspectIndex(context.Background(), m.ref("app:one")); !errors.Is(err, ErrNotIndex) {
		t.Fatalf("got %v, want ErrNotIndex", err)
	}
}
