package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/registry/internal/faultproxy"
	"github.com/rancher/ferry/registry/platform"
)

func linuxTarget(t *testing.T) platform.Target {
	t.Helper()
	tg, err := platform.ParseTarget("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

// serveHostile starts the hostile registry over TLS (named insecure, so
// its test certificate is accepted) with a plain-HTTP twin.
func serveHostile(t *testing.T) (host string, c *Client) {
	t.Helper()
	h := &faultproxy.Hostile{Stall: 10 * time.Second}
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS()
	plain := httptest.NewServer(h)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); plain.CloseClientConnections(); plain.Close() })
	h.Self = srv.Listener.Addr().String()
	h.HTTPSelf = plain.Listener.Addr().String()
	// The timeouts are well below the stall but well above what a healthy
	// request takes on a loaded machine under -race, so only the stalls
	// time out.
	c = newClient(t, WithInsecureRegistries(h.Self), WithResponseTimeout(time.Second), WithReadTimeout(time.Second),
		WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 2}))
	return h.Self, c
}

func TestHostileRegistryEndsInClearErrors(t *testing.T) {
	host, c := serveHostile(t)
	for _, tc := range []struct {
		scenario string
		want     error
		says     string
	}{
		{"stall-manifest", ErrTransient, "no response within 1s (response timeout)"},
		{"stall-layer", ErrTransient, "read timeout"},
		{"huge-config", ErrTooLarge, "68719476736 bytes, over the 8 MiB limit"},
		{"lying-config", nil, "error verifying sha256 checksum after reading 151 bytes"},
		{"huge-manifest", ErrTooLarge, "manifest " + host + "/huge-manifest:t"},
		{"foreign-loopback", ErrForbiddenAddress, "localhost resolves to 127.0.0.1"},
		{"redirect-loopback", ErrForbiddenAddress, "localhost resolves to 127.0.0.1"},
		{"redirect-http", ErrInsecureRedirect, "to http://127.0.0.1"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "b.tar")
			cache, err := NewCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = c.WriteBundle(context.Background(), out, []string{host + "/" + tc.scenario + ":t"}, linuxTarget(t), WithCache(cache))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
			// Bounded, not fast: without the timeouts a stall never ends.
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %s", d)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output left behind: %v", err)
			}
		})
	}
}

// A plain-HTTP registry on loopback that asks for credentials gets none,
// nor any request at all, unless it is named insecure.
func TestPlainHTTPOnlyForNamedHosts(t *testing.T) {
	var requests, withCreds atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			withCreds.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/x/y:t"
	kc := WithKeychain(staticKeychain{"user", "secret"})
	steps := WithRetryBackoff(remote.Backoff{Steps: 1})

	c := newClient(t, kc, steps)
	_, err := c.Resolve(context.Background(), ref, linuxTarget(t))
	if !errors.Is(err, ErrPlainHTTP) || !strings.Contains(err.Error(), "pass --insecure-registry "+host) || strings.Contains(err.Error(), "http: server gave") {
		t.Fatalf("got %v, want ErrPlainHTTP telling to pass --insecure-registry %s", err, host)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d plain-HTTP requests reached an unnamed host (%d with credentials)", n, withCreds.Load())
	}
	if _, err := c.InspectIndex(context.Background(), ref); !errors.Is(err, ErrPlainHTTP) {
		t.Fatalf("inspect: got %v", err)
	}
	if _, err := c.VerifyIndex(context.Background(), ref, nil); !errors.Is(err, ErrPlainHTTP) {
		t.Fatalf("verify: got %v", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d plain-HTTP requests reached an unnamed host", n)
	}

	// Named, it is spoken to, credentials included: the refusal above was
	// the rule, not a broken server.
	named := newClient(t, kc, steps, WithInsecureRegistries(host))
	_, _ = named.Resolve(context.Background(), ref, linuxTarget(t))
	if withCreds.Load() == 0 {
		t.Fatalf("named insecure host got %d requests, none with credentials", requests.Load())
	}
}

// A registry asking to wait is waited for, and the request succeeds.
func TestRetryAfterIsHonoured(t *testing.T) {
	h := &faultproxy.Hostile{}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, WithInsecureRegistries(host), WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 3}))
	start := time.Now()
	if _, err := c.Resolve(context.Background(), host+"/fine:t", linuxTarget(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %s, before the Retry-After second", d)
	}
}

// A manifest body cut short is fetched again; when every attempt is cut,
// the error says the fault was transient and how often it was tried.
func TestManifestBodyCutIsRetried(t *testing.T) {
	for _, tc := range []struct {
		cuts int32
		ok   bool
	}{{2, true}, {99, false}} {
		h := &faultproxy.Hostile{}
		var cut atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet && cut.Add(1) <= tc.cuts {
				w.Header().Set("Content-Length", "1000")
				w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
				_, _ = w.Write([]byte(`{"schemaVersion":2,`))
				return
			}
			h.ServeHTTP(w, r)
		}))
		host := strings.TrimPrefix(srv.URL, "http://")
		c := newClient(t, WithInsecureRegistries(host), WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 3}))
		_, err := c.Resolve(context.Background(), host+"/fine:t", linuxTarget(t))
		srv.Close()
		if tc.ok && err != nil {
			t.Fatalf("%d cuts: %v", tc.cuts, err)
		}
		if !tc.ok && (!errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "gave up after 3 attempts")) {
			t.Fatalf("every body cut: got %v", err)
		}
	}
}

// An untrusted certificate on a loopback registry is reported as such,
// with what to do, and without the refused plain-HTTP attempt's message.
func TestTLSFailureReportedAlone(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	c := newClient(t, WithRetryBackoff(remote.Backoff{Steps: 1}))
	_, err := c.Resolve(context.Background(), host+"/x/y:t", linuxTarget(t))
	if err == nil || !strings.Contains(err.Error(), "x509") || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
		t.Fatalf("got %v, want the certificate error and SSL_CERT_FILE", err)
	}
	for _, tail := range []string{"http://", "plain HTTP", "HTTP response"} {
		if strings.Contains(err.Error(), tail) {
			t.Errorf("error carries the http attempt (%q): %v", tail, err)
		}
	}
}
