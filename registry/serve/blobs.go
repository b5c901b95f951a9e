package serve

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
)

// holdBack is how many bytes of a blob not yet checked wait for its digest
// to match before they are sent: without them a client has no complete body.
const holdBack = 4 << 10

// copyBuffers are large so that a read through a zstd bundle's seek table
// spans whole frames rather than revisiting one frame per small read.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// errDamaged is recorded for a blob whose first full read did not match
// its digest.
var errDamaged = errors.New("blob is damaged in its bundle")

func (h *Handler) blob(w http.ResponseWriter, r *http.Request, ref string) {
	d, err := v1.NewHash(ref)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content", ref)
		return
	}
	size, ok := h.cat.Size(d)
	if !ok {
		writeError(w, r, http.StatusNotFound, codeBlobUnknown, "blob unknown to registry", d.String())
		return
	}
	if good, seen := h.state(d); seen && good != nil {
		h.damaged(w, r, d, good)
		return
	}
	_, _, random := h.cat.BlobAt(d)
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+d.String()+`"`)
	if random {
		hd.Set("Accept-Ranges", "bytes")
	}
	if r.Method == http.MethodHead {
		hd.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-r.Context().Done():
		return // the client is gone
	}
	if !random {
		// A layer of a docker save archive, compressed as it is read: every
		// read checks it (its Range requests get the whole blob).
		h.stream(w, r, d, size, nil)
		return
	}
	c, first := h.begin(d)
	switch {
	case c == nil:
		h.serveSection(w, r, d)
	case first && r.Header.Get("Range") == "":
		h.stream(w, r, d, size, c)
	case r.Header.Get("Range") == "":
		h.streamPending(w, r, d, size, c)
	default:
		if first {
			h.verify(d, c)
		}
		if err := c.wait(r); err != nil {
			h.damaged(w, r, d, err)
			return
		}
		h.serveSection(w, r, d)
	}
}

// serveSection serves a checked blob, or the ranges asked of it.
func (h *Handler) serveSection(w http.ResponseWriter, r *http.Request, d v1.Hash) {
	rs, size, ok := h.cat.BlobSection(d)
	if !ok {
		h.damaged(w, r, d, fmt.Errorf("blob has no random access"))
		return
	}
	if r.Header.Get("Range") != "" {
		defer rs.Close()
		http.ServeContent(w, r, "", time.Time{}, rs)
		return
	}
	// The whole blob: read ahead, with the large buffer.
	rc := newReadAhead(rs)
	defer rc.Close()
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if err := copyBlob(w, rc); err != nil && r.Context().Err() == nil {
		h.log.Error("blob read failed after its response began; cutting the connection", "digest", d, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// stream sends a blob read through its digest check, holding back its last
// bytes until the check passes. With c, it is the blob's first check and
// ends c: it reads the blob to its end even when the client goes away, as
// the requests waiting for c need its outcome.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, d v1.Hash, size int64, c *check) {
	var err error
	if c != nil {
		defer func() { h.finish(d, c, err) }()
	}
	rc, err := h.open(d, size, c != nil)
	if err != nil {
		h.damaged(w, r, d, err)
		return
	}
	defer rc.Close()
	hw := newHoldback(w, size, c != nil)
	err = copyBlob(hw, rc)
	if hw.err != nil && c == nil {
		return // the client went away; the blob is still unchecked
	}
	h.finish(d, c, err)
	if err == nil {
		hw.flush()
		return
	}
	h.fail(w, r, d, hw, err)
}

// open reads a blob through its digest check: a blob with random access
// (random) decompressed a buffer ahead of the hashing, as only such blobs
// come in a section of their own; others as the catalog streams them.
func (h *Handler) open(d v1.Hash, size int64, random bool) (io.ReadCloser, error) {
	if !random {
		rc, _, err := h.cat.Blob(d)
		return rc, err
	}
	rs, _, ok := h.cat.BlobSection(d)
	if !ok {
		return nil, fmt.Errorf("blob %s has no random access", d)
	}
	return bundle.VerifyingReader(newReadAhead(rs), v1.Descriptor{Digest: d, Size: size}), nil
}

// streamPending sends a blob whose first check another request is making,
// without hashing it again: the last bytes wait for that check's outcome.
func (h *Handler) streamPending(w http.ResponseWriter, r *http.Request, d v1.Hash, size int64, c *check) {
	rs, _, ok := h.cat.BlobSection(d)
	if !ok {
		h.damaged(w, r, d, fmt.Errorf("blob has no random access"))
		return
	}
	rc := newReadAhead(rs)
	defer rc.Close()
	hw := newHoldback(w, size, false)
	err := copyBlob(hw, rc)
	if err == nil {
		rc.Close() // release the decoder and buffers while waiting
		err = c.wait(r)
	}
	if err == nil {
		hw.flush()
		return
	}
	h.fail(w, r, d, hw, err)
}

// fail ends a response whose blob could not be read whole, or not as good.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, d v1.Hash, hw *holdback, err error) {
	if hw.err != nil || r.Context().Err() != nil {
		return // the client went away
	}
	if !hw.started {
		h.damaged(w, r, d, err)
		return
	}
	h.log.Error("blob read failed after its response began; cutting the connection", "digest", d, "error", err)
	// The status line and most of the body are out: the only way left to
	// tell the client is to end the response short of its Content-Length.
	panic(http.ErrAbortHandler)
}

// copyBlob copies with a large buffer, so that a read through a zstd
// bundle's frames hands the decoder large reads.
func copyBlob(w io.Writer, r io.Reader) error {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// Hide w's ReadFrom, if any, so that reads use the large buffer.
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, r, *buf)
	return err
}

// verify makes a blob's first check without a client to send it to.
func (h *Handler) verify(d v1.Hash, c *check) {
	var err error
	defer func() { h.finish(d, c, err) }()
	rc, _, err := h.cat.Blob(d)
	if err != nil {
		return
	}
	defer rc.Close()
	err = copyBlob(io.Discard, rc)
}

// damaged answers for a blob that cannot be served as good.
func (h *Handler) damaged(w http.ResponseWriter, r *http.Request, d v1.Hash, err error) {
	h.log.Error("blob not served", "digest", d, "error", err)
	writeError(w, r, http.StatusInternalServerError, codeUnknown, "blob cannot be read from its bundle: "+err.Error(), d.String())
}

// state reports a blob's check: seen is false until it has been read
// whole once; good is nil when it matched its digest.
func (h *Handler) state(d v1.Hash) (good error, seen bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	good, seen = h.checked[d]
	return good, seen
}

// check is a blob's first digest check, which the first full read makes
// while others read along; done closes when err holds its outcome.
type check struct {
	done chan struct{}
	err  error
}

// wait returns the check's outcome, or the request's error if its client
// goes away first.
func (c *check) wait(r *http.Request) error {
	select {
	case <-c.done:
		return c.err
	case <-r.Context().Done():
		return r.Context().Err()
	}
}

// begin returns nil for a blob checked good, else its check in progress;
// first is true when the caller starts it and must finish it.
func (h *Handler) begin(d v1.Hash) (c *check, first bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if good, seen := h.checked[d]; seen {
		if good == nil {
			return nil, false
		}
		c = &check{done: make(chan struct{}), err: good}
		close(c.done)
		return c, false
	}
	if c = h.checking[d]; c != nil {
		return c, false
	}
	c = &check{done: make(chan struct{})}
	h.checking[d] = c
	return c, true
}

// finish records a check's outcome (once for c; c is nil for a blob read
// as a stream): a match or a mismatch is kept,
// while any other error (a read that failed) leaves the blob to be
// checked again by the next request.
func (h *Handler) finish(d v1.Hash, c *check, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c != nil {
		if h.checking[d] != c {
			return // already finished
		}
		delete(h.checking, d)
	}
	damaged := errors.Is(err, bundle.ErrDigestMismatch) || errors.Is(err, bundle.ErrSizeMismatch)
	if damaged {
		err = fmt.Errorf("%w: %w", errDamaged, err)
		h.log.Error("blob does not match its digest; it will not be served", "digest", d, "error", err)
	}
	if err == nil || damaged {
		h.checked[d] = err
	}
	if c != nil {
		c.err = err
		close(c.done)
	}
}

// holdback writes everything but the last holdBack bytes it is given; flush
// sends them. The response starts on the first byte sent.
type holdback struct {
	w       http.ResponseWriter
	size    int64
	drain   bool // after the client goes away, take the rest unsent
	started bool
	tail    []byte
	err     error // from w: the client is gone
}

func newHoldback(w http.ResponseWriter, size int64, drain bool) *holdback {
	return &holdback{w: w, size: size, drain: drain}
}

func (h *holdback) Write(p []byte) (int, error) {
	n := len(p)
	if h.err != nil {
		return h.gone(n)
	}
	if out := len(h.tail) + len(p) - holdBack; out > 0 {
		fromTail := min(out, len(h.tail))
		if err := h.send(h.tail[:fromTail]); err != nil {
			return h.gone(n)
		}
		h.tail = h.tail[:copy(h.tail, h.tail[fromTail:])]
		if err := h.send(p[:out-fromTail]); err != nil {
			return h.gone(n)
		}
		p = p[out-fromTail:]
	}
	h.tail = append(h.tail, p...)
	return n, nil
}

// gone answers a write once the client is gone.
func (h *holdback) gone(n int) (int, error) {
	if h.drain {
		return n, nil
	}
	return 0, h.err
}

func (h *holdback) flush() error {
	err := h.send(h.tail)
	h.tail = nil
	return err
}

func (h *holdback) send(p []byte) error {
	if !h.started {
		h.started = true
		h.w.Header().Set("Content-Length", strconv.FormatInt(h.size, 10))
		h.w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return nil
	}
	_, err := h.w.Write(p)
	if err != nil {
		h.err = err
	}
	return err
}
