package registry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/registry/internal/faultproxy"
)

// The request log shows each attempt and retry, and never a credential:
// not the Authorization header, not a signed redirect's query.
func TestRequestLogShowsRetriesNotCredentials(t *testing.T) {
	h := &faultproxy.Hostile{}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && r.URL.Query().Get("sig") == "" {
			if calls.Add(1) == 1 {
				http.Error(w, "slow down", http.StatusServiceUnavailable)
				return
			}
			http.Redirect(w, r, r.URL.Path+"?sig=s3cr3tsig", http.StatusTemporaryRedirect)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	var log bytes.Buffer
	c := newClient(t, WithInsecureRegistries(host), WithKeychain(staticKeychain{"u", "hunter2pw"}), WithRequestLog(&log),
		WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 3}))
	if _, err := c.Resolve(context.Background(), host+"/fine:t", linuxTarget(t)); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	for _, want := range []string{"/v2/fine/manifests/t: 503 Service Unavailable", "retrying GET http://" + host + "/v2/fine/manifests/t in", "(attempt 2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"s3cr3tsig", "hunter2pw", "dTpodW50ZXIycHc"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds the credential %q:\n%s", secret, out)
		}
	}
}
