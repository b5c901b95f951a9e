package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// transferAttempts bounds retries of a download that broke mid-body. The
// transport already retries whole requests (429, 5xx, refused connections)
// with backoff; a body cut short after a 200 is past its reach.
const transferAttempts = 3

// retryTransfer runs fetch until it succeeds, fails with something other
// than a broken transfer, or runs out of attempts.
func retryTransfer(ctx context.Context, fetch func() error) error {
	var err error
	for attempt := 0; attempt < transferAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		if err = fetch(); err == nil || !brokenTransfer(err) {
			return err
		}
	}
	return err
}

// brokenTransfer reports errors from a connection that dropped or stalled,
// as opposed to answers such as 404 or 401 that a retry would not change.
func brokenTransfer(err error) bool {
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || (errors.As(err, &ne) && ne.Timeout())
}
