package registry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
)

// pushDistinct pushes n images that share one layer and differ in their
// configs, one repository each, as a large airgap set has them.
func pushDistinct(t *testing.T, host string, n int) []string {
	t.Helper()
	base, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]string, n)
	for i := range refs {
		c := cf.DeepCopy()
		c.OS, c.Architecture = "linux", "amd64"
		c.Config.Labels = map[string]string{"n": fmt.Sprint(i)}
		img, err := mutate.ConfigFile(base, c)
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = fmt.Sprintf("%s/scale/img-%05d:v1", host, i)
		tag, err := name.NewTag(refs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
	}
	return refs
}

// liveHeap is the heap after two collections (the second frees what
// pools dropped in the first).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A bundle holds every resolved image until it is written, so what one
// holds beyond its manifest and config is paid thousands of times over.
// Measured at two sizes in one process, so that what both share (the
// client, its transports, caches) cancels out of the growth.
func TestResolvedHeldPerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes hundreds of images")
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const small, large = 200, 1200
	refs := pushDistinct(t, host, large)
	target, err := platform.ParseTarget("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	held := func(n int) (total, raw int64) {
		before := liveHeap()
		// A client of its own, kept alive with the images: what it caches
		// per repository is held as long, and one repository per image is
		// what large sets have.
		client, err := registry.NewClient(registry.WithInsecureRegistries(host))
		if err != nil {
			t.Fatal(err)
		}
		out, err := client.ResolveAll(context.Background(), refs[:n], []platform.Target{target})
		if err != nil {
			t.Fatal(err)
		}
		total = int64(liveHeap()) - int64(before)
		for _, r := range out[0] {
			raw += int64(len(r.Manifest) + len(r.Config))
		}
		runtime.KeepAlive(out)
		runtime.KeepAlive(client)
		return total, raw
	}
	a, rawA := held(small)
	b, rawB := held(large)
	growth := float64((b-rawB)-(a-rawA)) / (large - small)
	t.Logf("a resolved image holds %.0f bytes beyond its manifest and config (%d bytes)", growth, rawB/large)
	if growth > maxResolvedOverhead {
		t.Errorf("a resolved image holds %.0f bytes beyond its manifest and config; want at most %d", growth, maxResolvedOverhead)
	}
}

// maxResolvedOverhead leaves room for what a resolved image must keep (its
// names, descriptor and platform, and the client's state for its
// repository) but not for its remote handle, which the fetch needs only
// for layers with URLs.
const maxResolvedOverhead = 1500
