package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle/catalog"
)

// Handler serves a catalog as a read-only registry. It is safe for
// concurrent use.
type Handler struct {
	cat *catalog.Catalog
	log *slog.Logger
	sem chan struct{} // one slot per blob body being read

	mu       sync.Mutex
	checked  map[v1.Hash]error  // present: read whole once; nil means it matched its digest
	checking map[v1.Hash]*check // first reads under way
}

// Option configures New.
type Option func(*Handler) error

// WithLogger logs one line per request at Info level, and every blob found
// damaged at Error level. The default discards both.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) error {
		if l == nil {
			return fmt.Errorf("serve: nil logger")
		}
		h.log = l
		return nil
	}
}

// WithMaxConcurrentBlobs bounds how many blob bodies are read at once (the
// default is 32); further requests wait for a slot. Each read holds a copy
// buffer and, from a zstd bundle, a streaming decoder with its window (one
// frame), so this bounds memory.
func WithMaxConcurrentBlobs(n int) Option {
	return func(h *Handler) error {
		if n < 1 {
			return fmt.Errorf("serve: max concurrent blobs %d: need at least 1", n)
		}
		h.sem = make(chan struct{}, n)
		return nil
	}
}

// New returns a handler serving cat under /v2/. The archives behind cat
// must stay open while it serves.
func New(cat *catalog.Catalog, opts ...Option) (*Handler, error) {
	if cat == nil {
		return nil, fmt.Errorf("serve: nil catalog")
	}
	h := &Handler{cat: cat, log: slog.New(slog.DiscardHandler), sem: make(chan struct{}, 32), checked: map[v1.Hash]error{}, checking: map[v1.Hash]*check{}}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("serve: nil option")
		}
		if err := opt(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ServeHTTP answers the distribution API's read endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	// Deferred so that a response cut short (a damaged blob) is logged too.
	defer func() {
		h.log.Info("request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
			"range", r.Header.Get("Range"), "status", rec.status, "bytes", rec.n, "duration", time.Since(start).Round(time.Microsecond))
	}()
	h.route(rec, r)
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2")
	if !ok || (rest != "" && rest[0] != '/') {
		writeError(w, r, http.StatusNotFound, codeUnsupported, "not a registry API path", r.URL.Path)
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, codeUnsupported, "this registry is read-only", r.Method)
		return
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		writeJSON(w, r, struct{}{})
		return
	}
	if rest == "_catalog" {
		h.repositories(w, r)
		return
	}
	if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		h.tags(w, r, repo)
		return
	}
	for _, kind := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			repo, ref := rest[:i], rest[i+len(kind):]
			if _, err := h.cat.Tags(repo); err != nil {
				writeError(w, r, http.StatusNotFound, codeNameUnknown, "repository name not known to registry", map[string]string{"name": repo})
				return
			}
			if kind == "/blobs/" {
				h.blob(w, r, ref)
			} else {
				h.manifest(w, r, repo, ref)
			}
			return
		}
	}
	writeError(w, r, http.StatusNotFound, codeUnsupported, "not a registry API path", r.URL.Path)
}

func (h *Handler) manifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	m, err := h.cat.Manifest(repo, ref)
	if err != nil {
		writeError(w, r, http.StatusNotFound, codeManifestUnknown, "manifest unknown", map[string]string{"name": repo, "reference": ref})
		return
	}
	// Manifests are small and held in memory: hashing each response costs
	// little and means a damaged one is never served.
	if got, _, err := v1.SHA256(bytes.NewReader(m.Raw)); err != nil || got != m.Digest {
		h.log.Error("manifest does not match its digest", "name", repo, "digest", m.Digest, "hashes to", got)
		writeError(w, r, http.StatusInternalServerError, codeUnknown, "manifest is damaged in its bundle", m.Digest.String())
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", string(m.MediaType))
	hd.Set("Docker-Content-Digest", m.Digest.String())
	hd.Set("Content-Length", strconv.Itoa(len(m.Raw)))
	hd.Set("ETag", `"`+m.Digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Raw)
	}
}

func (h *Handler) tags(w http.ResponseWriter, r *http.Request, repo string) {
	all, err := h.cat.Tags(repo)
	if err != nil {
		writeError(w, r, http.StatusNotFound, codeNameUnknown, "repository name not known to registry", map[string]string{"name": repo})
		return
	}
	tags, ok := h.page(w, r, all)
	if ok {
		writeJSON(w, r, struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{repo, tags})
	}
}

func (h *Handler) repositories(w http.ResponseWriter, r *http.Request) {
	repos, ok := h.page(w, r, h.cat.Repositories())
	if ok {
		writeJSON(w, r, struct {
			Repositories []string `json:"repositories"`
		}{repos})
	}
}

// page applies the n and last query parameters to a sorted list, and sets
// the Link header to the next page when there is one.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, all []string) ([]string, bool) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if s := q.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, r, http.StatusBadRequest, codePagination, "invalid number of results requested", s)
			return nil, false
		}
		if n < len(all) {
			all = all[:n]
			if n > 0 {
				next := fmt.Sprintf("%s?n=%d&last=%s", r.URL.Path, n, url.QueryEscape(all[n-1]))
				w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next))
			}
		}
	}
	return append([]string{}, all...), true
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, codeUnknown, err.Error(), nil)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// recorder notes the status and body size for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
