package faultproxy

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Fault is what the Proxy does to one request.
type Fault int

// The faults, in the order a fault is drawn from.
const (
	None         Fault = iota
	Status429          // Too Many Requests with Retry-After: 1
	Status500          // Internal Server Error
	Status503          // Service Unavailable
	Reset              // the connection is reset before any response
	StallHeaders       // the connection stays silent, then closes
	Truncate           // half the body, then the connection closes
	StallBody          // half the body, then silence, then close
	Latency            // answered normally after a delay
	numFaults
)

var faultNames = [...]string{"none", "429", "500", "503", "reset", "stall-headers", "truncate", "stall-body", "latency"}

func (f Fault) String() string {
	if f < 0 || f >= numFaults {
		return fmt.Sprintf("fault(%d)", int(f))
	}
	return faultNames[f]
}

// Proxy forwards requests to Upstream and injects a fault into a Rate
// share of them. Which requests get which fault depends only on Seed and
// on each request's method, path and how often that method and path were
// seen, not on timing, so a run with the same seed sees the same faults.
type Proxy struct {
	Upstream  *url.URL
	Transport http.RoundTripper // to Upstream; http.DefaultTransport if nil
	Rate      float64
	Seed      uint64
	Stall     time.Duration // how long stalls last
	Log       *log.Logger   // one line per fault, if set

	mu     sync.Mutex
	seen   map[string]int
	counts [numFaults]int
}

// Counts is how many requests got each fault so far.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for f, n := range p.counts {
		if n > 0 {
			out[Fault(f).String()] = n
		}
	}
	return out
}

// draw decides the fault for a request.
func (p *Proxy) draw(r *http.Request) Fault {
	key := r.Method + " " + r.URL.Path
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	n := p.seen[key]
	p.seen[key]++
	p.mu.Unlock()
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, p.Seed)
	fmt.Fprintf(h, "%s#%d", key, n)
	x := mix(h.Sum64())
	f := None
	if float64(x>>11)/float64(1<<53) < p.Rate {
		f = Fault(1 + (x%1000003)%uint64(numFaults-1))
	}
	// Only a GET with a body can be cut or stalled mid-body.
	if (f == Truncate || f == StallBody) && r.Method != http.MethodGet {
		f = Status503
	}
	return f
}

// mix is splitmix64's finalizer: FNV alone changes few high bits when
// only a key's last byte differs, which made retries share their fault.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.draw(r)
	p.mu.Lock()
	p.counts[f]++
	p.mu.Unlock()
	if f != None && p.Log != nil {
		p.Log.Printf("fault %s: %s %s", f, r.Method, r.URL.Path)
	}
	switch f {
	case Status429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}`, http.StatusTooManyRequests)
		return
	case Status500, Status503:
		code := map[Fault]int{Status500: 500, Status503: 503}[f]
		http.Error(w, "injected fault", code)
		return
	case Reset:
		hijack(w, func(c net.Conn) { reset(c) })
		return
	case StallHeaders:
		hijack(w, func(c net.Conn) { time.Sleep(p.Stall); c.Close() })
		return
	case Latency:
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if (f == Truncate || f == StallBody) && resp.StatusCode == http.StatusOK && resp.ContentLength > 1 {
		p.cut(w, resp, f == StallBody)
		return
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends r upstream as it came, Host header included, so the
// registry writes Location URLs that point back at the proxy.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	u := *p.Upstream
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
	if err != nil {
		return nil, err
	}
	copyHeader(out.Header, r.Header)
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	out.Header.Set("X-Forwarded-Proto", "https")
	rt := p.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return rt.RoundTrip(out)
}

// cut writes the headers and half the body, then closes the connection,
// after a stall if asked.
func (p *Proxy) cut(w http.ResponseWriter, resp *http.Response, stall bool) {
	hijack(w, func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 %s\r\n", resp.Status)
		h := resp.Header.Clone()
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
		h.Set("Connection", "close")
		_ = h.Write(c)
		io.WriteString(c, "\r\n")
		_, _ = io.CopyN(c, resp.Body, resp.ContentLength/2)
		if stall {
			time.Sleep(p.Stall)
		}
		c.Close()
	})
}

func hijack(w http.ResponseWriter, fn func(net.Conn)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	fn(c)
}

// reset closes with a TCP RST rather than a FIN.
func reset(c net.Conn) {
	raw := c
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
		tc.Close()
		return
	}
	c.Close()
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}
