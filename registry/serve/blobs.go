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
	ra, _, random := h.cat.BlobAt(d)
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
	verified := h.verified(d)
	switch {
	case random && !verified && r.Header.Get("Range") != "":
		if err := h.verify(d); err != nil {
			h.damaged(w, r, d, err)
			return
		}
		fallthrough
	case random && (verified || r.Header.Get("Range") != ""):
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(ra, 0, size))
	default:
		// A first full read, or a blob only readable as a stream (a layer of
		// a docker save archive, whose Range requests get the whole blob).
		h.stream(w, r, d, size)
	}
}

// stream sends a blob read through its digest check, holding back its last
// bytes until the check passes.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, d v1.Hash, size int64) {
	rc, _, err := h.cat.Blob(d)
	if err != nil {
		h.damaged(w, r, d, err)
		return
	}
	defer rc.Close()
	hw := &holdback{w: w, start: func() {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	}}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, err = io.CopyBuffer(hw, rc, *buf)
	if hw.err != nil {
		return // the client went away; the blob is still unchecked
	}
	if err == nil {
		h.record(d, nil)
		err = hw.flush()
		return
	}
	if errors.Is(err, bundle.ErrDigestMismatch) || errors.Is(err, bundle.ErrSizeMismatch) {
		h.record(d, fmt.Errorf("%w: %w", errDamaged, err))
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

// verify reads a blob whole once, however many requests ask at once, and
// records the outcome.
func (h *Handler) verify(d v1.Hash) error {
	_, err, _ := h.flight.Do(d.String(), func() (any, error) {
		if good, seen := h.state(d); seen {
			return nil, good
		}
		rc, _, err := h.cat.Blob(d)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		buf := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(buf)
		// Hide io.Discard's ReadFrom so that reads use the large buffer.
		_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, rc, *buf)
		switch {
		case err == nil:
			h.record(d, nil)
		case errors.Is(err, bundle.ErrDigestMismatch) || errors.Is(err, bundle.ErrSizeMismatch):
			err = fmt.Errorf("%w: %w", errDamaged, err)
			h.record(d, err)
		}
		return nil, err
	})
	return err
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

func (h *Handler) verified(d v1.Hash) bool {
	good, seen := h.state(d)
	return seen && good == nil
}

func (h *Handler) record(d v1.Hash, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.log.Error("blob does not match its digest; it will not be served", "digest", d, "error", err)
	}
	h.checked[d] = err
}

// holdback writes everything but the last holdBack bytes it is given; flush
// sends them. The response starts on the first byte sent.
type holdback struct {
	w       io.Writer
	start   func()
	started bool
	tail    []byte
	err     error // from w: the client is gone
}

func (h *holdback) Write(p []byte) (int, error) {
	n := len(p)
	if out := len(h.tail) + len(p) - holdBack; out > 0 {
		fromTail := min(out, len(h.tail))
		if err := h.send(h.tail[:fromTail]); err != nil {
			return 0, err
		}
		h.tail = h.tail[:copy(h.tail, h.tail[fromTail:])]
		if err := h.send(p[:out-fromTail]); err != nil {
			return 0, err
		}
		p = p[out-fromTail:]
	}
	h.tail = append(h.tail, p...)
	return n, nil
}

func (h *holdback) flush() error {
	err := h.send(h.tail)
	h.tail = nil
	return err
}

func (h *holdback) send(p []byte) error {
	if !h.started {
		h.started = true
		h.start()
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
