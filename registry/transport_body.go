package registry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleBody abandons a body whose Read waits longer than timeout for a
// byte: a stalled server ends in an error instead of a hang, while a slow
// one that keeps sending is never cut. Only time spent inside Read counts,
// so a consumer that pauses between reads does not trip it.
type idleBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	fired   atomic.Bool
	once    sync.Once
}

func newIdleBody(rc io.ReadCloser, timeout time.Duration, cancel context.CancelCauseFunc) io.ReadCloser {
	b := &idleBody{rc: rc, timeout: timeout, cancel: cancel}
	if timeout > 0 {
		b.timer = time.AfterFunc(time.Hour, func() {
			b.fired.Store(true)
			cancel(errReadTimeout{timeout})
		})
		b.timer.Stop()
	}
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.timeout)
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err != nil && err != io.EOF && b.fired.Load() {
		err = errReadTimeout{b.timeout}
	}
	return n, err
}

func (b *idleBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() {
		if b.timer != nil {
			b.timer.Stop()
		}
		b.cancel(nil)
	})
	return err
}

// errReadTimeout is a body that stopped sending. It is a net.Error whose
// Timeout is true, so retries treat it as the transient fault it is.
type errReadTimeout struct{ d time.Duration }

func (e errReadTimeout) Error() string {
	return fmt.Sprintf("no data received for %s (read timeout)", e.d)
}
func (e errReadTimeout) Timeout() bool   { return true }
func (e errReadTimeout) Temporary() bool { return true }

var _ net.Error = errReadTimeout{}

// capManifest refuses manifest bodies over MaxManifestBytes: by the
// declared length at once, or as soon as more arrives than the limit.
func capManifest(req *http.Request, resp *http.Response) (*http.Response, error) {
	if req.Method != http.MethodGet || resp.StatusCode != http.StatusOK || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, nil
	}
	if resp.ContentLength > MaxManifestBytes {
		resp.Body.Close()
		return nil, tooLarge("manifest "+manifestName(req.URL), resp.ContentLength, MaxManifestBytes)
	}
	resp.Body = &capReader{rc: resp.Body, left: MaxManifestBytes, limit: MaxManifestBytes, what: "manifest " + manifestName(req.URL)}
	return resp, nil
}

func tooLarge(what string, size, limit int64) error {
	if size < 0 {
		return fmt.Errorf("%s: %w: over the %s limit", what, ErrTooLarge, humanBytes(limit))
	}
	return fmt.Errorf("%s: %w: %d bytes, over the %s limit", what, ErrTooLarge, size, humanBytes(limit))
}

func humanBytes(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// manifestName turns /v2/REPO/manifests/REF back into host/REPO:REF or @REF.
func manifestName(u *url.URL) string {
	repo, ref, ok := strings.Cut(strings.TrimPrefix(u.Path, "/v2/"), "/manifests/")
	if !ok {
		return u.Host + u.Path
	}
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@"
	}
	return u.Host + "/" + repo + sep + ref
}

// capReader fails once more than left bytes arrive.
type capReader struct {
	rc          io.ReadCloser
	left, limit int64
	what        string
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	if int64(n) > c.left {
		return 0, tooLarge(c.what, -1, c.limit)
	}
	c.left -= int64(n)
	return n, err
}

func (c *capReader) Close() error { return c.rc.Close() }

// forbiddenIP is an address a registry's redirect or a foreign URL must
// not lead ferry to: this host, the private network, link-local (cloud
// metadata services) and the unspecified address.
func forbiddenIP(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast()
}

// lookupProxyHost is the host:port of the proxy an environment variable
// names, or "".
func lookupProxyHost(env string) string {
	v := os.Getenv(env)
	if v == "" {
		return ""
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
