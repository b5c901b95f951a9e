package serve_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func TestManifests(t *testing.T) {
	blobs := verifytest.Blobs{}
	img := image(runtimeName, linux, 1, 4096, blobs)
	srv := server(t, openArchive(t, write(t, []bundle.Image{img}, blobs, bundle.Zstd)))
	base := srv.URL + "/v2/rancher/rke2-runtime/manifests/"

	if r := do(t, "GET", srv.URL+"/v2/"); r.status != 200 || r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %d %v", r.status, r.header)
	}
	for _, ref := range []string{"v1", img.Descriptor.Digest.String()} {
		r := do(t, "GET", base+ref)
		if r.status != 200 || !bytes.Equal(r.body, img.Manifest) {
			t.Fatalf("GET %s: %d %q", ref, r.status, r.body)
		}
		if r.header.Get("Docker-Content-Digest") != img.Descriptor.Digest.String() ||
			r.header.Get("Content-Type") != string(types.DockerManifestSchema2) ||
			r.header.Get("Content-Length") != strconv.Itoa(len(img.Manifest)) {
			t.Fatalf("GET %s headers: %v", ref, r.header)
		}
		h := do(t, "HEAD", base+ref)
		if h.status != 200 || len(h.body) != 0 || h.header.Get("Docker-Content-Digest") != img.Descriptor.Digest.String() ||
			h.header.Get("Content-Length") != strconv.Itoa(len(img.Manifest)) {
			t.Fatalf("HEAD %s: %d %v", ref, h.status, h.header)
		}
	}
	for _, tc := range []struct{ url, code string }{
		{base + "v2", "MANIFEST_UNKNOWN"},
		{base + "sha256:" + fmt.Sprintf("%064d", 0), "MANIFEST_UNKNOWN"},
		{srv.URL + "/v2/rancher/nope/manifests/v1", "NAME_UNKNOWN"},
		{srv.URL + "/v2/rancher/nope/tags/list", "NAME_UNKNOWN"},
		{srv.URL + "/v2/rancher/nope/blobs/" + img.Descriptor.Digest.String(), "NAME_UNKNOWN"},
		{srv.URL + "/v2/rancher/rke2-runtime/blobs/sha256:" + fmt.Sprintf("%064d", 0), "BLOB_UNKNOWN"},
	} {
		if r := do(t, "GET", tc.url); r.status != 404 || errorCode(t, r) != tc.code {
			t.Errorf("GET %s: %d %s, want 404 %s", tc.url, r.status, r.body, tc.code)
		}
		if r := do(t, "HEAD", tc.url); r.status != 404 || len(r.body) != 0 {
			t.Errorf("HEAD %s: %d, want 404 and no body", tc.url, r.status)
		}
	}
	if r := do(t, "GET", srv.URL+"/v2/rancher/rke2-runtime/blobs/sha256:xyz"); r.status != 400 || errorCode(t, r) != "DIGEST_INVALID" {
		t.Errorf("bad digest: %d %s", r.status, r.body)
	}
}

func TestWritesAreRefused(t *testing.T) {
	blobs := verifytest.Blobs{}
	img := image(runtimeName, linux, 1, 4096, blobs)
	srv := server(t, openArchive(t, write(t, []bundle.Image{img}, blobs, bundle.Zstd)))
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v2/rancher/rke2-runtime/blobs/uploads/"},
		{"PATCH", "/v2/rancher/rke2-runtime/blobs/uploads/1"},
		{"PUT", "/v2/rancher/rke2-runtime/manifests/v2"},
		{"DELETE", "/v2/rancher/rke2-runtime/manifests/" + img.Descriptor.Digest.String()},
		{"POST", "/v2/new/blobs/uploads/"},
	} {
		r := do(t, tc.method, srv.URL+tc.path)
		if r.status != http.StatusMethodNotAllowed || errorCode(t, r) != "UNSUPPORTED" || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: %d %v %s", tc.method, tc.path, r.status, r.header, r.body)
		}
	}
	if r := do(t, "GET", srv.URL+"/v2/rancher/rke2-runtime/manifests/v1"); r.status != 200 {
		t.Fatalf("after writes: %d", r.status)
	}
}

func TestMergedTagAcrossBundles(t *testing.T) {
	blobs := verifytest.Blobs{}
	w1809 := image(runtimeName, win("17763.5458"), 1, 4096, blobs)
	w2022 := image(runtimeName, win("20348.2700"), 2, 4096, blobs)
	pause := image("docker.io/rancher/mirrored-pause:3.6", win("17763.5458"), 3, 1024, blobs)
	srv := server(t,
		openArchive(t, write(t, []bundle.Image{w1809, pause}, blobs, bundle.Zstd)),
		openArchive(t, write(t, []bundle.Image{w2022}, blobs, bundle.None)))

	r := do(t, "GET", srv.URL+"/v2/rancher/rke2-runtime/manifests/v1")
	if r.status != 200 || r.header.Get("Content-Type") != string(types.DockerManifestList) {
		t.Fatalf("tag: %d %v", r.status, r.header)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(r.body))
	if err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("merged list %s: %v", r.body, err)
	}
	if got := verifytest.Hash(r.body).String(); r.header.Get("Docker-Content-Digest") != got {
		t.Fatalf("digest header %s, body hashes to %s", r.header.Get("Docker-Content-Digest"), got)
	}
	want := map[v1.Hash]string{w1809.Descriptor.Digest: "10.0.17763.5458", w2022.Descriptor.Digest: "10.0.20348.2700"}
	for _, d := range idx.Manifests {
		if d.Platform == nil || want[d.Digest] != d.Platform.OSVersion {
			t.Fatalf("child %s %+v", d.Digest, d.Platform)
		}
		// Each child and its blobs come from the bundle that holds them.
		c := do(t, "GET", srv.URL+"/v2/rancher/rke2-runtime/manifests/"+d.Digest.String())
		m, err := v1.ParseManifest(bytes.NewReader(c.body))
		if c.status != 200 || err != nil {
			t.Fatalf("child %s: %d %v", d.Digest, c.status, err)
		}
		for _, l := range append(m.Layers, m.Config) {
			b := do(t, "GET", srv.URL+"/v2/rancher/rke2-runtime/blobs/"+l.Digest.String())
			if b.status != 200 || b.err != nil || verifytest.Hash(b.body) != l.Digest {
				t.Fatalf("blob %s: %d %v", l.Digest, b.status, b.err)
			}
		}
	}
	var cat struct{ Repositories []string }
	if r := do(t, "GET", srv.URL+"/v2/_catalog"); json.Unmarshal(r.body, &cat) != nil ||
		fmt.Sprint(cat.Repositories) != "[rancher/mirrored-pause rancher/rke2-runtime]" {
		t.Fatalf("catalog %s", r.body)
	}
}

func TestPagination(t *testing.T) {
	blobs := verifytest.Blobs{}
	var images []bundle.Image
	for i, tag := range []string{"a", "b", "c"} {
		images = append(images, image("docker.io/rancher/x:"+tag, linux, int64(i), 1024, blobs))
	}
	srv := server(t, openArchive(t, write(t, images, blobs, bundle.Zstd)))
	type tags struct {
		Name string
		Tags []string
	}
	get := func(q string) (tags, response) {
		r := do(t, "GET", srv.URL+"/v2/rancher/x/tags/list"+q)
		var out tags
		if r.status == 200 {
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return out, r
	}
	for _, tc := range []struct{ q, want, link string }{
		{"", "[a b c]", ""},
		{"?n=2", "[a b]", `</v2/rancher/x/tags/list?n=2&last=b>; rel="next"`},
		{"?n=2&last=b", "[c]", ""},
		{"?last=c", "[]", ""},
		{"?n=0", "[]", ""},
	} {
		got, r := get(tc.q)
		if got.Name != "rancher/x" || fmt.Sprint(got.Tags) != tc.want || r.header.Get("Link") != tc.link || got.Tags == nil {
			t.Errorf("%q: %d %s, Link %q", tc.q, r.status, r.body, r.header.Get("Link"))
		}
	}
	if _, r := get("?n=-1"); r.status != 400 || errorCode(t, r) != "PAGINATION_NUMBER_INVALID" {
		t.Errorf("n=-1: %d %s", r.status, r.body)
	}
}
