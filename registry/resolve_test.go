package registry

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/registry/platform"
	"github.com/rancher/ferry/registry/registrytest"
)

var (
	sampleOnce sync.Once
	sampleSet  *registrytest.Sample
	sampleErr  error
)

// serveSample starts ggcr's in-memory registry holding the sample set.
func serveSample(t *testing.T) (host string, c *Client, warnings *bytes.Buffer) {
	t.Helper()
	sampleOnce.Do(func() {
		sampleSet, sampleErr = registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 256 << 10})
	})
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	srv := httptest.NewServer(ggcrregistry.New())
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	warnings = &bytes.Buffer{}
	c = newClient(t, WithInsecureRegistries(host), WithWarnings(warnings), WithRetryBackoff(remote.Backoff{Steps: 1}))
	if err := sampleSet.Push(context.Background(), c, host); err != nil {
		t.Fatal(err)
	}
	return host, c, warnings
}

func windows(t *testing.T, name string) platform.Target {
	t.Helper()
	v, err := platform.ParseWindowsVersion(name)
	if err != nil {
		t.Fatal(err)
	}
	return platform.WindowsTarget(v)
}

func TestResolvePicksHighestRevisionFromList(t *testing.T) {
	host, c, _ := serveSample(t)
	r, err := c.Resolve(context.Background(), host+"/"+registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag, windows(t, "ltsc2019"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Descriptor.Platform.OSVersion; got != "10.0.17763.5458" {
		t.Fatalf("os.version %s, want the highest 1809 revision 10.0.17763.5458", got)
	}
	if r.Name != host+"/"+registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag || r.Tag != registrytest.SampleRuntimeTag {
		t.Fatalf("name %q tag %q", r.Name, r.Tag)
	}
	if !strings.Contains(string(r.Config), `"os.version":"10.0.17763.5458"`) {
		t.Fatalf("config is not the 1809 one: %s", r.Config)
	}
}

func TestResolveScratchImageWithoutOSVersionWarns(t *testing.T) {
	host, c, warnings := serveSample(t)
	r, err := c.Resolve(context.Background(), host+"/"+registrytest.SampleScratch+":"+registrytest.SampleScratchTag, windows(t, "2025"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Descriptor.Platform.OS != "windows" || !strings.Contains(warnings.String(), "no os.version") {
		t.Fatalf("platform %v, warnings %q", r.Descriptor.Platform, warnings)
	}
	if _, err := c.Resolve(context.Background(), host+"/"+registrytest.SampleScratch+":"+registrytest.SampleScratchTag, platform.Target{Platform: linuxAMD64}); !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("windows scratch image for linux/amd64: %v", err)
	}
}

func TestResolveNoMatchListsPlatforms(t *testing.T) {
	host, c, _ := serveSample(t)
	_, err := c.Resolve(context.Background(), host+"/"+registrytest.SamplePause+":"+registrytest.SamplePauseTag, windows(t, "20H2"))
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{registrytest.SamplePause, "linux/amd64", "windows/amd64:10.0.17763.5458", "windows/amd64:10.0.26100.2894"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestResolveDigestReferences(t *testing.T) {
	host, c, _ := serveSample(t)
	ctx := context.Background()
	tagged := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	byTag, err := c.Resolve(ctx, tagged, windows(t, "1809"))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(mustRef(t, c, tagged), c.Remote(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	listDigest := desc.Digest.String()

	pinned, err := c.Resolve(ctx, tagged+"@"+listDigest, windows(t, "1809"))
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Name != tagged || pinned.Tag != registrytest.SamplePauseTag || pinned.Descriptor.Digest != byTag.Descriptor.Digest {
		t.Fatalf("tag@digest: name %q tag %q digest %s", pinned.Name, pinned.Tag, pinned.Descriptor.Digest)
	}
	bare, err := c.Resolve(ctx, host+"/"+registrytest.SamplePause+"@"+listDigest, windows(t, "1809"))
	if err != nil {
		t.Fatal(err)
	}
	if bare.Tag != "" || bare.Name != host+"/"+registrytest.SamplePause+"@"+listDigest || strings.Contains(bare.Name, "i-was-a-digest") {
		t.Fatalf("digest-only: name %q tag %q", bare.Name, bare.Tag)
	}
	wrong := "sha256:" + strings.Repeat("0", 64)
	if _, err := c.Resolve(ctx, tagged+"@"+wrong, windows(t, "1809")); err == nil {
		t.Fatal("a tag with a digest the registry does not have resolved")
	}
}

func TestResolveBadReference(t *testing.T) {
	c := newClient(t)
	if _, err := c.Resolve(context.Background(), "UPPER/case:tag!", platform.Target{Platform: linuxAMD64}); !errors.Is(err, ErrBadReference) {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveAllJoinsErrors(t *testing.T) {
	host, c, _ := serveSample(t)
	refs := []string{host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag, host + "/nope/missing:1", host + "/" + registrytest.SampleScratch + ":" + registrytest.SampleScratchTag}
	_, err := c.ResolveAll(context.Background(), refs, []platform.Target{{Platform: linuxAMD64}})
	if err == nil || !strings.Contains(err.Error(), "nope/missing") || !strings.Contains(err.Error(), registrytest.SampleScratch) {
		t.Fatalf("want both failures reported, got %v", err)
	}
}

var linuxAMD64 = mustPlatform("linux/amd64")

func mustPlatform(s string) v1.Platform {
	t, err := platform.ParseTarget(s)
	if err != nil {
		panic(err)
	}
	return t.Platform
}

func mustRef(t *testing.T, c *Client, s string) name.Reference {
	t.Helper()
	r, err := c.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveKeepsSourceIndex(t *testing.T) {
	host, c, _ := serveSample(t)
	ctx := context.Background()
	list := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	desc, err := remote.Get(mustRef(t, c, list), c.Remote(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ResolveAll(ctx, []string{list + "@" + desc.Digest.String()}, []platform.Target{windows(t, "1809"), windows(t, "ltsc2022")})
	if err != nil {
		t.Fatal(err)
	}
	for _, per := range got {
		src := per[0].SourceIndex
		if src == nil {
			t.Fatalf("%s: no source index", per[0].Name)
		}
		h, n, _ := v1.SHA256(bytes.NewReader(src.Manifest))
		if h != desc.Digest || n != desc.Size || src.Descriptor.Digest != desc.Digest || src.Descriptor.Size != desc.Size ||
			src.Descriptor.MediaType != desc.MediaType || !bytes.Equal(src.Manifest, desc.Manifest) {
			t.Errorf("%s: source index %+v (bytes hash to %s, %d), registry served %s %s (%d)",
				per[0].Name, src.Descriptor, h, n, desc.MediaType, desc.Digest, desc.Size)
		}
	}
	if got[0][0].Descriptor.Digest == got[1][0].Descriptor.Digest {
		t.Error("both targets resolved to the same child")
	}
	single, err := c.Resolve(ctx, host+"/"+registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag+"-windows-1809", windows(t, "1809"))
	if err != nil {
		t.Fatal(err)
	}
	if single.SourceIndex != nil {
		t.Errorf("a single image has source index %s", single.SourceIndex.Descriptor.Digest)
	}
}
