package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

func newClient(t testing.TB, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A program may replace remote.DefaultTransport with any RoundTripper;
// NewClient once type-asserted it to *http.Transport and panicked.
func TestNewClientWithReplacedDefaultTransport(t *testing.T) {
	old := remote.DefaultTransport
	t.Cleanup(func() { remote.DefaultTransport = old })
	remote.DefaultTransport = http.NewFileTransport(http.Dir(t.TempDir()))
	if _, err := NewClient(WithInsecureRegistries("localhost:5000")); err != nil {
		t.Fatal(err)
	}
}

func TestClientOptionsRejectBadValues(t *testing.T) {
	for what, opt := range map[string]Option{
		"nil option":       nil,
		"nil keychain":     WithKeychain(nil),
		"zero jobs":        WithJobs(0),
		"negative jobs":    WithJobs(-2),
		"scheme in host":   WithInsecureRegistries("http://localhost:5000"),
		"path in host":     WithInsecureRegistries("localhost:5000/v2"),
		"negative backoff": WithRetryBackoff(remote.Backoff{Steps: -1}),
	} {
		if _, err := NewClient(opt); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", what, err)
		}
	}
	if _, err := NewClient(WithWarnings(nil), WithJobs(1), WithInsecureRegistries("localhost:5000", " ")); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// A nil cache once killed the process from a resolve goroutine.
func TestPullRefusesNilArguments(t *testing.T) {
	c := newClient(t)
	write := func(context.Context, int, []bundle.Image, bundle.Blobs) error { return nil }
	targets := []platform.Target{{Platform: linuxAMD64}}
	refs := []string{"localhost:1/x:y"}
	if _, err := c.Pull(context.Background(), refs, targets, nil, write); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil cache: %v", err)
	}
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(context.Background(), refs, targets, cache, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil write: %v", err)
	}
	if _, err := c.Pull(context.Background(), refs, targets, cache, write, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil option: %v", err)
	}
	if _, err := c.NewFetcher(nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewFetcher(nil): %v", err)
	}
}

func TestFetcherCloseTwiceAndAddAfterClose(t *testing.T) {
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := newClient(t).NewFetcher(cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close()
	if err := f.Add(nil, false); !errors.Is(err, ErrFetcherClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if err := f.Run(context.Background()); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	f, _ = newClient(t).NewFetcher(cache, nil)
	if err := f.Add([]*Resolved{{}}, false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Add of an image not from Resolve: %v", err)
	}
}

func TestCreateOptionsRejectBadValues(t *testing.T) {
	c := newClient(t)
	_, err := c.CreateIndex(context.Background(), "localhost:1/x:list", []string{"localhost:1/x:a"}, WithIndexFormat("v3"))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := c.ResolveAll(context.Background(), nil, nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil resolve option: %v", err)
	}
}

func TestParseReferenceKeepsCause(t *testing.T) {
	_, err := newClient(t).ParseReference("UPPER/case:tag!")
	var cause *name.ErrBadName
	if !errors.Is(err, ErrBadReference) || !errors.As(err, &cause) {
		t.Fatalf("err = %v: want ErrBadReference wrapping *name.ErrBadName", err)
	}
}

// An empty directory once meant a cache in the working directory.
func TestCacheNeedsADirectory(t *testing.T) {
	if _, err := NewCache(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewCache(\"\"): %v", err)
	}
	var zero Cache
	if _, err := zero.create(v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero Cache: %v", err)
	}
}
