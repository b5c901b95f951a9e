package registry

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// WithRequestLog writes one line per registry request attempt (method, URL,
// status or error, time taken) and per retry to w, for -v. URLs lose their
// user info and query (a redirect to blob storage carries its signature
// there) and headers are never written, so credentials stay out of logs.
// nil, the default, logs nothing.
func WithRequestLog(w io.Writer) Option {
	return func(o *options) error {
		if w != nil {
			o.reqlog = &requestLog{w: w}
		}
		return nil
	}
}

// requestLog serialises lines from parallel requests.
type requestLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *requestLog) printf(format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// attempt logs the outcome of one round trip.
func (l *requestLog) attempt(req *http.Request, n int, start time.Time, resp *http.Response, err error) {
	if l == nil {
		return
	}
	took := time.Since(start).Round(time.Millisecond)
	try := ""
	if n > 1 {
		try = fmt.Sprintf(" (attempt %d)", n)
	}
	if err != nil {
		l.printf("%s %s%s: %v after %s", req.Method, redact(req), try, redactErr(err, req), took)
		return
	}
	l.printf("%s %s%s: %s in %s", req.Method, redact(req), try, resp.Status, took)
}

// redactErr keeps url.Error's message from repeating the query.
func redactErr(err error, req *http.Request) string {
	s := err.Error()
	if q := req.URL.RawQuery; q != "" {
		s = strings.ReplaceAll(s, q, "…")
	}
	return s
}
