package registry

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
	"github.com/rancher/ferry/registry/registrytest"
)

// flakyRegistry fails each blob's first GET in the given way, as
// overloaded registries and proxies do.
func flakyRegistry(t *testing.T, always bool, fail func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	var (
		mu    sync.Mutex
		seen  = map[string]bool{}
		armed atomic.Bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := armed.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !seen[r.URL.Path]
		if first {
			seen[r.URL.Path] = true
		}
		mu.Unlock()
		if first || (always && armed.Load() && strings.Contains(r.URL.Path, "/blobs/")) {
			fail(w, r, reg)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	sampleOnce.Do(func() {
		sampleSet, sampleErr = registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 256 << 10})
	})
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	if err := sampleSet.Push(context.Background(), newClient(t, WithInsecureRegistries(host)), host); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	return host
}

// bundleFrom resolves and fetches the sample's 1809 images and writes them.
func bundleFrom(t *testing.T, host string) error {
	t.Helper()
	c := newClient(t, WithInsecureRegistries(host), WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 4}))
	ctx := context.Background()
	resolved, err := c.ResolveAll(ctx, sampleSet.Refs(host), []platform.Target{windows(t, "1809")})
	if err != nil {
		return err
	}
	cache, err := NewCache(t.TempDir())
	if err != nil {
		return err
	}
	f, err := c.NewFetcher(cache, nil)
	if err != nil {
		return err
	}
	if err := f.Add(resolved[0], false); err != nil {
		return err
	}
	f.Close()
	if err := f.Run(ctx); err != nil {
		return err
	}
	var images []bundle.Image
	for _, r := range resolved[0] {
		images = append(images, r.Image)
	}
	return bundle.Write(ctx, io.Discard, images, f)
}

func TestFetchRetries503(t *testing.T) {
	host := flakyRegistry(t, false, func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		http.Error(w, "slow down", http.StatusServiceUnavailable)
	})
	if err := bundleFrom(t, host); err != nil {
		t.Fatalf("one 503 per blob was not retried: %v", err)
	}
}

func TestFetchRetriesConnectionDroppedMidBody(t *testing.T) {
	host := flakyRegistry(t, false, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	if err := bundleFrom(t, host); err != nil {
		t.Fatalf("a dropped transfer was not retried: %v", err)
	}
}

func TestFetchGivesUpOnPersistentErrors(t *testing.T) {
	host := flakyRegistry(t, true, func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	err := bundleFrom(t, host)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("a registry that always fails: %v", err)
	}
}
