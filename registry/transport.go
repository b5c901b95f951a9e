package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrPlainHTTP is returned for a plain-HTTP request to a host not named
	// with WithInsecureRegistries: ferry never downgrades on its own, so
	// credentials never cross the network in clear to a host nobody named.
	ErrPlainHTTP = errors.New("plain HTTP refused")
	// ErrInsecureRedirect is returned for a redirect from https to http.
	ErrInsecureRedirect = errors.New("redirect from https to plain http refused")
	// ErrForbiddenAddress is returned when a foreign-layer URL or a redirect
	// to another host leads to a loopback, private or link-local address.
	ErrForbiddenAddress = errors.New("address not allowed")
	// ErrTooLarge is returned for a manifest, index or config larger than
	// ferry reads into memory.
	ErrTooLarge = errors.New("too large")
)

// Defaults of WithResponseTimeout and WithReadTimeout.
const (
	DefaultResponseTimeout = 60 * time.Second
	DefaultReadTimeout     = 60 * time.Second
)

// Limits on what is read into memory: a registry could answer anything.
const (
	MaxManifestBytes = 8 << 20
	MaxConfigBytes   = 8 << 20
)

// hostSet is a set of host or host:port names, safe for concurrent use.
type hostSet struct {
	mu sync.RWMutex
	m  map[string]bool
}

func (s *hostSet) add(h string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	s.m[strings.ToLower(h)] = true
}

// has matches host:port against entries written host:port or host alone.
func (s *hostSet) has(hostport string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	hostport = strings.ToLower(hostport)
	if s.m[hostport] {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && s.m[host]
}

// guard is the transport under every request ferry makes. It enforces the
// plain-HTTP rule, refuses https→http redirects, checks the addresses
// dialled for hosts that are neither registries the user named nor hosts
// named insecure, caps manifest bodies and abandons stalled bodies.
type guard struct {
	insecure *hostSet // named with WithInsecureRegistries
	known    *hostSet // registries of references parsed by the Client
	proxies  *hostSet // HTTP(S)_PROXY hosts, which are dialled instead of the target

	secure, unverified           *http.Transport
	responseTimeout, readTimeout time.Duration
	dialer                       *net.Dialer
	resolver                     *net.Resolver
}

func newGuard(o *options, known *hostSet) *guard {
	g := &guard{
		insecure:    &hostSet{},
		known:       known,
		proxies:     proxyHosts(),
		readTimeout: o.readTimeout,
		// Uploads get longer: a registry may take a while to commit a
		// large blob before it answers.
		responseTimeout: o.responseTimeout,
		dialer:          &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		resolver:        net.DefaultResolver,
	}
	for h := range o.insecure {
		g.insecure.add(h)
	}
	g.secure = http1Only(baseTransport())
	g.secure.DialContext = g.dial
	g.unverified = g.secure.Clone()
	g.unverified.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}} //nolint:gosec // only for hosts the user named insecure
	return g
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.check(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	rt := g.secure
	if g.insecure.has(hostPort(req)) {
		rt = g.unverified
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := g.headerTimer(req, cancel)
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if stop() {
		// Headers that came as the timer fired come on a cancelled
		// context: their body is lost too.
		if err == nil {
			resp.Body.Close()
		}
		resp, err = nil, errResponseTimeout{g.uploadAware(req)}
	}
	if err != nil {
		cancel(nil)
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && string(rhe.RecordHeader[:]) == "HTTP/" && !g.insecure.has(hostPort(req)) {
			err = &PlainHTTPError{Host: req.URL.Host, Served: true}
		}
		return nil, err
	}
	resp.Body = newIdleBody(resp.Body, g.readTimeout, cancel)
	return capManifest(req, resp)
}

// headerTimer cancels a request whose response headers do not come in
// time; stop reports whether it did.
func (g *guard) headerTimer(req *http.Request, cancel context.CancelCauseFunc) (stop func() bool) {
	d := g.uploadAware(req)
	if d <= 0 {
		return func() bool { return false }
	}
	var fired atomic.Bool
	t := time.AfterFunc(d, func() {
		fired.Store(true)
		cancel(errResponseTimeout{d})
	})
	return func() bool { t.Stop(); return fired.Load() }
}

// uploadAware is the response timeout for req: ten times as long for a
// request that sends a body, which a registry may take a while to commit.
func (g *guard) uploadAware(req *http.Request) time.Duration {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return g.responseTimeout
	}
	return 10 * g.responseTimeout
}

// errResponseTimeout is a request whose response headers did not come in
// time. A net.Error whose Timeout is true: retries take it as transient.
type errResponseTimeout struct{ d time.Duration }

func (e errResponseTimeout) Error() string {
	return fmt.Sprintf("no response within %s (response timeout)", e.d)
}
func (e errResponseTimeout) Timeout() bool   { return true }
func (e errResponseTimeout) Temporary() bool { return true }

// check applies the scheme rules before anything is sent.
func (g *guard) check(req *http.Request) error {
	if req.URL.Scheme != "http" {
		return nil
	}
	if prev := req.Response; prev != nil && prev.Request != nil && prev.Request.URL.Scheme == "https" {
		return fmt.Errorf("%w: %s to %s", ErrInsecureRedirect, redact(prev.Request), redact(req))
	}
	if !g.insecure.has(hostPort(req)) {
		return &PlainHTTPError{Host: req.URL.Host}
	}
	return nil
}

// PlainHTTPError is a plain-HTTP request ferry refused to send, or a
// host not named insecure that answered https in plain HTTP (see
// ErrPlainHTTP).
type PlainHTTPError struct {
	Host   string
	Served bool // the host answered an https request in plain HTTP
}

func (e *PlainHTTPError) Error() string {
	what := "to " + e.Host
	if e.Served {
		what = e.Host + " answered https in plain HTTP"
	}
	return fmt.Sprintf("%s: %s: ferry speaks plain HTTP only to hosts named with --insecure-registry; pass --insecure-registry %s to allow it", ErrPlainHTTP, what, e.Host)
}

func (e *PlainHTTPError) Is(target error) bool { return target == ErrPlainHTTP }

// dial resolves the name itself so that the address checked is the one
// connected to: a name cannot resolve to a public address for the check
// and a private one for the connection.
func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if g.known.has(addr) || g.insecure.has(addr) || g.proxies.has(addr) {
		return g.dialer.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if ip = ip.Unmap(); forbiddenIP(ip) {
			return nil, fmt.Errorf("%w: %s resolves to %s, a loopback, private or link-local address; only registries named in a reference or with --insecure-registry may be there", ErrForbiddenAddress, host, ip)
		}
	}
	var last error
	for _, ip := range ips {
		c, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("%s: no addresses", host)
	}
	return nil, last
}

// hostPort is the request's host with the scheme's default port filled in,
// as the dialer sees it.
func hostPort(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	port := "443"
	if req.URL.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(req.URL.Hostname(), port)
}

// redact is a request's URL without query or credentials, for messages:
// signed blob URLs carry tokens in their query.
func redact(req *http.Request) string {
	u := *req.URL
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// proxyHosts are the proxies named in the environment: the dialer connects
// to them instead of the target, and they resolve the target themselves.
func proxyHosts() *hostSet {
	s := &hostSet{}
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if p := lookupProxyHost(v); p != "" {
			s.add(p)
		}
	}
	return s
}
