package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option configures a Client. An option given a value that cannot work
// makes NewClient return an error.
type Option func(*options) error

type options struct {
	keychain  authn.Keychain
	insecure  map[string]bool
	userAgent string
	jobs      int
	warn      io.Writer
	backoff   remote.Backoff
	// responseTimeout bounds the wait for response headers, readTimeout
	// a body's silence; 0 waits for ever.
	responseTimeout, readTimeout time.Duration
	// reqlog, when set, gets a line per request attempt and retry.
	reqlog *requestLog
}

// WithKeychain replaces authn.DefaultKeychain (docker config.json and its
// credential helpers) as the source of registry credentials.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return fmt.Errorf("%w: nil keychain", ErrInvalidArgument)
		}
		o.keychain = k
		return nil
	}
}

// WithInsecureRegistries allows plain HTTP and unverified TLS for these
// hosts (host or host:port). Every other host gets verified TLS, with extra
// CAs from the standard SSL_CERT_FILE / SSL_CERT_DIR.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			h = strings.TrimSpace(h)
			if strings.ContainsAny(h, "/@ ") {
				return fmt.Errorf("%w: insecure registry %q: give host or host:port, without a scheme or path", ErrInvalidArgument, h)
			}
			if h != "" {
				o.insecure[h] = true
			}
		}
		return nil
	}
}

// WithJobs sets how many blobs are fetched at once; at least 1.
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: jobs must be at least 1, not %d", ErrInvalidArgument, n)
		}
		o.jobs = n
		return nil
	}
}

// WithWarnings sends non-fatal findings (an image without os.version, a
// foreign layer fetched from its URL) to w; nil discards them.
func WithWarnings(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			w = io.Discard
		}
		o.warn = w
		return nil
	}
}

// WithResponseTimeout bounds how long a request waits for its response
// headers (DefaultResponseTimeout; ten times that for uploads, which a
// registry may take a while to commit); 0 waits for ever. A request that
// times out is retried.
func WithResponseTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: negative response timeout %s", ErrInvalidArgument, d)
		}
		o.responseTimeout = d
		return nil
	}
}

// WithReadTimeout abandons a response body that sends nothing for d
// (DefaultReadTimeout), and retries it; a slow body that keeps sending is
// never cut. 0 waits for ever.
func WithReadTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: negative read timeout %s", ErrInvalidArgument, d)
		}
		o.readTimeout = d
		return nil
	}
}

// WithRetryBackoff tunes retries on 408, 429, 5xx and dropped, cut or
// stalled connections: Steps is the number of attempts (at least 1),
// Duration the first wait, multiplied by Factor each time, plus up to
// Jitter of it at random. A Retry-After header lengthens a wait.
func WithRetryBackoff(b remote.Backoff) Option {
	return func(o *options) error {
		if b.Steps < 0 || b.Duration < 0 || b.Factor < 0 || b.Jitter < 0 {
			return fmt.Errorf("%w: negative retry backoff %+v", ErrInvalidArgument, b)
		}
		o.backoff = b
		return nil
	}
}

// Client is the one registry setup every ferry command shares: credentials,
// TLS and insecure hosts, retries and the user agent.
type Client struct {
	opts   options
	rt     http.RoundTripper
	puller *remote.Puller
	// known are the registries of references parsed so far: the dial-time
	// address check leaves them alone, whatever they resolve to.
	known *hostSet
}

// NewClient returns a Client with ferry's defaults: the docker keychain,
// verified TLS, 4 parallel fetches and retries with backoff.
func NewClient(opts ...Option) (*Client, error) {
	o := options{
		keychain:  authn.DefaultKeychain,
		insecure:  map[string]bool{},
		userAgent: "ferry",
		jobs:      4,
		warn:      io.Discard,
		backoff:   remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5},

		responseTimeout: DefaultResponseTimeout,
		readTimeout:     DefaultReadTimeout,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Client{opts: o, known: &hostSet{}}
	c.rt = &pingCache{inner: &retryTransport{inner: newGuard(&o, c.known), backoff: o.backoff, log: o.reqlog}}
	// One Puller per client authenticates once per repository instead of
	// once per request: every resolve and blob fetch reuses its transports.
	var err error
	if c.puller, err = remote.NewPuller(c.base(context.Background())...); err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	return c, nil
}

// baseTransport is a copy of go-containerregistry's default transport, or,
// when a program has replaced that with another RoundTripper, of net/http's,
// since TLS and HTTP/1.1 settings need an *http.Transport.
func baseTransport() *http.Transport {
	if t, ok := remote.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
}

// http1Only keeps parallel blob downloads on separate TCP connections
// rather than multiplexed on one HTTP/2 connection: bundling from a TLS
// registry on loopback took 0.78 s instead of 0.88 s (median of 5).
func http1Only(t *http.Transport) *http.Transport {
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return t
}

// ParseReference parses an image reference, allowing plain HTTP for
// registries named insecure. Its registry becomes one the client may dial
// whatever address it resolves to (see ErrForbiddenAddress).
func (c *Client) ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadReference, s, err)
	}
	c.noteRegistry(ref.Context().Registry)
	if c.isInsecure(ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(strings.TrimSpace(s), name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadReference, s, err)
		}
	}
	return ref, nil
}

// noteRegistry records a registry the user named, under the host:port
// its requests dial.
func (c *Client) noteRegistry(r name.Registry) {
	if c.known == nil {
		return
	}
	host := r.RegistryStr()
	if _, _, err := net.SplitHostPort(host); err == nil {
		c.known.add(host)
		return
	}
	c.known.add(net.JoinHostPort(host, "443"))
	if c.isInsecure(host) {
		c.known.add(net.JoinHostPort(host, "80"))
	}
}

func (c *Client) isInsecure(host string) bool {
	if c.opts.insecure[host] {
		return true
	}
	h, _, found := strings.Cut(host, ":")
	return found && c.opts.insecure[h]
}

// Remote returns go-containerregistry options carrying this client's setup.
func (c *Client) Remote(ctx context.Context) []remote.Option {
	opts := c.base(ctx)
	if c.puller != nil {
		opts = append(opts, remote.Reuse(c.puller))
	}
	return opts
}

func (c *Client) base(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.opts.keychain),
		remote.WithTransport(c.rt),
		remote.WithUserAgent(c.opts.userAgent),
		// The client's transport retries requests (honouring
		// Retry-After) and retryTransfer retries bodies. What is left to
		// go-containerregistry is what they cannot see: an upload whose
		// body broke, which it reopens and sends again.
		remote.WithRetryBackoff(c.opts.backoff),
		remote.WithRetryPredicate(uploadRetryable),
		remote.WithRetryStatusCodes(),
		remote.WithJobs(c.opts.jobs),
	}
}

func (c *Client) warnf(format string, args ...any) {
	fmt.Fprintf(c.opts.warn, "warning: "+format+"\n", args...)
}
