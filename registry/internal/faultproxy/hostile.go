package faultproxy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Scenarios the Hostile registry serves, one repository each, every image
// tagged "t".
var Scenarios = []string{
	"stall-manifest",    // the manifest's response headers never come
	"stall-layer",       // a layer sends half, then nothing
	"huge-config",       // the manifest declares a 64 GiB config, served endlessly
	"lying-config",      // the manifest declares a small config, served endlessly
	"huge-manifest",     // the manifest itself never ends
	"foreign-loopback",  // a foreign layer whose URL is https://localhost:PORT
	"redirect-loopback", // a layer redirected to https://localhost:PORT
	"redirect-http",     // a layer redirected from https to http://127.0.0.1:HTTPPORT
}

// Hostile is a registry on loopback that misbehaves in one way per
// repository (see Scenarios). Self is the host:port it is reached at,
// HTTPSelf that of a plain-HTTP listener serving the same handler.
type Hostile struct {
	Self, HTTPSelf string
	Stall          time.Duration // how long stalls last; they end when the client leaves
}

type blob struct {
	digest string
	data   []byte
}

func newBlob(b []byte) blob {
	return blob{digest: fmt.Sprintf("sha256:%x", sha256.Sum256(b)), data: b}
}

var (
	layer  = func() blob { b := make([]byte, 64<<10); _, _ = rand.Read(b); return newBlob(b) }()
	config = newBlob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%x"]}}`, sha256.Sum256(layer.data))))
)

const (
	mtManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// manifest is the scenario's image manifest.
func (h *Hostile) manifest(scenario string) []byte {
	cfgSize := int64(len(config.data))
	if scenario == "huge-config" {
		cfgSize = 64 << 30
	}
	l := map[string]any{"mediaType": mtLayer, "size": len(layer.data), "digest": layer.digest}
	if scenario == "foreign-loopback" {
		l["mediaType"] = mtForeign
		l["urls"] = []string{"https://localhost:" + port(h.Self) + "/foreign/layer"}
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": mtManifest,
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": cfgSize, "digest": config.digest},
		"layers": []any{l},
	}
	b, _ := json.Marshal(m)
	return b
}

func port(hostport string) string {
	return hostport[strings.LastIndex(hostport, ":")+1:]
}

func (h *Hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	repo, kind, id, ok := splitPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch kind {
	case "manifests":
		h.serveManifest(w, r, repo)
	case "blobs":
		h.serveBlob(w, r, repo, id)
	default:
		http.NotFound(w, r)
	}
}

// splitPath parses /v2/REPO/(manifests|blobs)/ID.
func splitPath(p string) (repo, kind, id string, ok bool) {
	p = strings.TrimPrefix(p, "/v2/")
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			return p[:i], strings.Trim(k, "/"), p[i+len(k):], true
		}
	}
	return "", "", "", false
}

func (h *Hostile) serveManifest(w http.ResponseWriter, r *http.Request, repo string) {
	switch repo {
	case "stall-manifest":
		h.stall(r)
		return
	case "huge-manifest":
		w.Header().Set("Content-Type", mtManifest)
		io.WriteString(w, `{"schemaVersion":2,"mediaType":"`+mtManifest+`","layers":[`)
		endless(w, r, []byte(strings.Repeat(" ", 32<<10)))
		return
	}
	b := h.manifest(repo)
	w.Header().Set("Content-Type", mtManifest)
	w.Header().Set("Docker-Content-Digest", fmt.Sprintf("sha256:%x", sha256.Sum256(b)))
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func (h *Hostile) serveBlob(w http.ResponseWriter, r *http.Request, repo, id string) {
	switch {
	case id == config.digest && (repo == "huge-config" || repo == "lying-config"):
		if repo == "huge-config" {
			w.Header().Set("Content-Length", fmt.Sprint(int64(64<<30)))
		}
		endless(w, r, make([]byte, 32<<10))
	case id == config.digest:
		_, _ = w.Write(config.data)
	case id != layer.digest:
		http.NotFound(w, r)
	case repo == "foreign-loopback":
		http.NotFound(w, r) // so the puller goes to the URL
	case repo == "redirect-loopback":
		http.Redirect(w, r, "https://localhost:"+port(h.Self)+"/v2/plain/blobs/"+id, http.StatusTemporaryRedirect)
	case repo == "redirect-http":
		http.Redirect(w, r, "http://"+h.HTTPSelf+"/v2/plain/blobs/"+id, http.StatusTemporaryRedirect)
	case repo == "stall-layer":
		w.Header().Set("Content-Length", fmt.Sprint(len(layer.data)))
		_, _ = w.Write(layer.data[:len(layer.data)/2])
		w.(http.Flusher).Flush()
		h.stall(r)
	default:
		_, _ = w.Write(layer.data)
	}
}

func (h *Hostile) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(h.Stall):
	}
}

// endless writes chunk until the client goes away.
func endless(w http.ResponseWriter, r *http.Request, chunk []byte) {
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}
