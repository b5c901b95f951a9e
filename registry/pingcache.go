package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// pingCache answers go-containerregistry's ping (an unauthenticated
// GET /v2/, which it sends before the first request to every repository)
// from the first answer each registry gave. A registry's challenge does not
// change within a run, and a bundle of thousands of images from one
// registry would otherwise spend a round trip per repository on it. A ping
// that failed after its retries fails again at once: for a registry named
// insecure that is the https attempt, after which go-containerregistry
// tries plain http.
type pingCache struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  map[string]*cachedPing // by scheme://host, under mu
}

type cachedPing struct {
	done   chan struct{} // closed once the fields below are set
	ok     bool          // whether this answer stands for later pings
	err    error
	status int
	proto  string
	major  int
	minor  int
	header http.Header
	body   []byte
}

// maxPingBody bounds what is kept of a ping's body, which clients discard.
const maxPingBody = 4 << 10

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" &&
		req.Header.Get("Authorization") == ""
}

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPing(req) {
		return p.inner.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[string]*cachedPing{}
	}
	c, found := p.seen[key]
	if !found {
		// The pings of repositories resolved at once wait for the first.
		c = &cachedPing{done: make(chan struct{})}
		p.seen[key] = c
	}
	p.mu.Unlock()
	if found {
		select {
		case <-c.done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		if c.ok {
			return c.response(req)
		}
		return p.inner.RoundTrip(req)
	}
	resp, err := p.ping(req, c)
	if !c.ok {
		p.mu.Lock()
		delete(p.seen, key) // a cancelled or odd ping is not remembered
		p.mu.Unlock()
	}
	close(c.done)
	return resp, err
}

// ping sends the first ping to a registry and fills c from its answer.
func (p *pingCache) ping(req *http.Request, c *cachedPing) (*http.Response, error) {
	resp, err := p.inner.RoundTrip(req)
	if err != nil {
		if req.Context().Err() == nil {
			c.err, c.ok = err, true
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.status, c.proto, c.major, c.minor, c.header, c.body = resp.StatusCode, resp.Proto, resp.ProtoMajor, resp.ProtoMinor, resp.Header.Clone(), body
	c.ok = len(body) <= maxPingBody
	return c.response(req)
}

func (c *cachedPing) response(req *http.Request) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", c.status, http.StatusText(c.status)), StatusCode: c.status,
		Proto: c.proto, ProtoMajor: c.major, ProtoMinor: c.minor,
		Header: c.header.Clone(), Body: io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)), Request: req,
	}, nil
}
