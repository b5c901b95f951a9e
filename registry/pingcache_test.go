package registry

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

// A bundle of images from many repositories of one registry pings it once,
// not once per repository as go-containerregistry would.
func TestPingOncePerRegistry(t *testing.T) {
	var pings, others atomic.Int64
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		} else {
			others.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	var refs []string
	for i := range 3 {
		ref := fmt.Sprintf("%s/team/app%d:v1", host, i)
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	pings.Store(0)
	others.Store(0)
	c := newClient(t, WithInsecureRegistries(host))
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	write := func(ctx context.Context, i int, images []bundle.Image, blobs bundle.Blobs) error { return nil }
	if _, err := c.Pull(context.Background(), refs, []platform.Target{linuxTarget(t)}, cache, write); err != nil {
		t.Fatal(err)
	}
	if got := pings.Load(); got != 1 {
		t.Errorf("%d pings for 3 repositories, want 1", got)
	}
	// A manifest, a config and two layers per image.
	if got := others.Load(); got != 12 {
		t.Errorf("%d other requests, want 12", got)
	}
}
