package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/registry/serve"
)

const runtimeName = "docker.io/rancher/rke2-runtime:v1"

var linux = v1.Platform{OS: "linux", Architecture: "amd64"}

func win(build string) v1.Platform {
	return v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0." + build}
}

// image makes an image of two layers of about size bytes each; seed makes
// images differ.
func image(name string, p v1.Platform, seed int64, size int, blobs verifytest.Blobs) bundle.Image {
	layers := []verifytest.Layer{
		verifytest.GzipLayer(verifytest.TarLayer(seed, size)),
		verifytest.GzipLayer(verifytest.TarLayer(seed+1000, size/3)),
	}
	return verifytest.Image(name, name[strings.LastIndex(name, ":")+1:], p, layers, blobs)
}

// write writes a bundle: zstd with a seek table, or a plain tar.
func write(t *testing.T, images []bundle.Image, blobs verifytest.Blobs, c bundle.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithCompression(c, 0)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openArchive(t *testing.T, b []byte) *bundle.Archive {
	t.Helper()
	a, err := bundle.Open(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// server serves the archives.
func server(t *testing.T, archives ...*bundle.Archive) *httptest.Server {
	t.Helper()
	cat, err := catalog.New(archives)
	if err != nil {
		t.Fatal(err)
	}
	h, err := serve.New(cat)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
	err    error // reading the body
}

func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, body, err}
}

// errorCode is the first code of a spec error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("status %d: not a spec error body: %q", r.status, r.body)
	}
	return body.Errors[0].Code
}
