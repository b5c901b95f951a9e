package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrTransient marks a failure of the network or of the registry that a
// later attempt could get past (a dropped or stalled connection, 429, 5xx):
// ferry retried it and ran out of attempts.
var ErrTransient = errors.New("transient network failure")

// TransientError is a transient fault that persisted through every attempt.
type TransientError struct {
	Attempts int
	Err      error
}

func (e *TransientError) Error() string {
	return fmt.Sprintf("%v (%s: gave up after %d attempts)", e.Err, ErrTransient, e.Attempts)
}

func (e *TransientError) Unwrap() error        { return e.Err }
func (e *TransientError) Is(target error) bool { return target == ErrTransient }

// maxRetryAfter bounds how long a Retry-After header can make ferry wait.
const maxRetryAfter = 60 * time.Second

// retryTransport retries whole requests on 408, 429, 5xx and on
// connections that failed or stalled before the response, with
// exponential backoff, waiting at least as long as Retry-After asks.
// Requests whose body cannot be replayed are sent once.
type retryTransport struct {
	inner   http.RoundTripper
	backoff remote.Backoff
	log     *requestLog
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		start := time.Now()
		resp, err := t.inner.RoundTrip(req)
		t.log.attempt(req, 1, start, resp, err)
		return resp, err
	}
	attempts := max(t.backoff.Steps, 1)
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		start := time.Now()
		resp, err := t.inner.RoundTrip(r)
		t.log.attempt(req, attempt, start, resp, err)
		wait, again := retryable(resp, err)
		if !again || req.Context().Err() != nil {
			return resp, err
		}
		if resp != nil {
			err = fmt.Errorf("%s %s: %s", req.Method, redact(req), resp.Status)
			drain(resp)
		}
		if attempt >= attempts {
			return nil, &TransientError{Attempts: attempt, Err: err}
		}
		delay := max(wait, backoffDelay(t.backoff, attempt))
		t.log.printf("retrying %s %s in %s (%d of %d attempts made)", req.Method, redact(req), delay.Round(time.Millisecond), attempt, attempts)
		if err := sleep(req.Context(), delay); err != nil {
			return nil, err
		}
	}
}

// retryable says whether a response or error is worth another attempt,
// and how long the server asked to wait.
func retryable(resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		return 0, brokenTransfer(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), true
	}
	return 0, false
}

// retryAfter reads seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	}
	return min(max(d, 0), maxRetryAfter)
}

func backoffDelay(b remote.Backoff, attempt int) time.Duration {
	d := float64(b.Duration)
	for range attempt - 1 {
		d *= max(b.Factor, 1)
	}
	if b.Jitter > 0 {
		d += d * b.Jitter * rand.Float64() //nolint:gosec // jitter, not a secret
	}
	return time.Duration(d)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryTransfer runs fetch until it succeeds, fails with something other
// than a broken transfer, or runs out of attempts. The transport retries
// whole requests; a body cut short or stalled after a 200 is past its
// reach, so every body ferry reads goes through here.
func (c *Client) retryTransfer(ctx context.Context, fetch func() error) error {
	attempts := max(c.opts.backoff.Steps, 1)
	var err error
	for attempt := 1; ; attempt++ {
		if err = fetch(); err == nil || !brokenTransfer(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= attempts {
			return &TransientError{Attempts: attempt, Err: err}
		}
		c.opts.reqlog.printf("transfer broke (%v); fetching again (%d of %d attempts made)", err, attempt, attempts)
		if serr := sleep(ctx, backoffDelay(c.opts.backoff, attempt)); serr != nil {
			return serr
		}
	}
}

// brokenTransfer reports errors from a connection that dropped or stalled,
// as opposed to answers such as 404 or 401 that a retry would not change.
// A TransientError has had its retries already.
func brokenTransfer(err error) bool {
	var te *TransientError
	if errors.As(err, &te) {
		return false
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || (errors.As(err, &ne) && ne.Timeout())
}

// uploadRetryable is go-containerregistry's retry predicate: failures the
// transport has not retried already, as a TransientError shows it has.
func uploadRetryable(err error) bool {
	var te *TransientError
	if err == nil || errors.As(err, &te) {
		return false
	}
	var tmp interface{ Temporary() bool }
	return brokenTransfer(err) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &tmp) && tmp.Temporary())
}
