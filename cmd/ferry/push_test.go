package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/registrytest"
)

// The per-version bundles and a Linux one, pushed to an empty registry,
// give the runtime tag the upstream list's digest, and a rerun (one bundle
// from stdin) uploads nothing.
func TestPushBundlesKeepDigests(t *testing.T) {
	src, _ := serveSample(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	if code, _, stderr := ferry(t, "bundle", "-f", writeList(t, src), "--windows-version", "1809,ltsc2022,2025",
		"-o", filepath.Join(dir, "win-{version}.tar.zst"), "--insecure-registry", src, "--cache", cache, "-q"); code != 0 {
		t.Fatal(stderr)
	}
	runtime := src + "/" + registrytest.SampleRuntime + ":" + registrytest.SampleRuntimeTag
	linux := filepath.Join(dir, "linux.tar")
	pauseSrc := src + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	if code, _, stderr := ferry(t, "bundle", runtime, pauseSrc, "--platform", "linux/amd64", "-o", linux,
		"--insecure-registry", src, "--cache", cache, "-q"); code != 0 {
		t.Fatal(stderr)
	}
	bundles, _ := filepath.Glob(filepath.Join(dir, "win-*.tar.zst"))
	bundles = append(bundles, linux)

	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	dst := strings.TrimPrefix(srv.URL, "http://")
	code, stdout, stderr := ferry(t, append([]string{"push", "--registry", dst + "/mirror", "--insecure-registry", dst, "--format", "json"}, bundles...)...)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	var rep registry.PushReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	// The pause list is whole once every bundle is in: the tag gets its
	// bytes. The runtime list also holds an older 1809 revision no bundle
	// carries, so its tag is a list merged from the four children.
	pause := registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	if got, want := headDigest(t, dst, dst+"/mirror/"+pause), headDigest(t, src, src+"/"+pause); got != want || rep.BytesUploaded == 0 {
		t.Fatalf("pushed pause tag is %s, want upstream %s; report %s", got, want, stdout)
	}
	pushed := dst + "/mirror/" + registrytest.SampleRuntime + ":" + registrytest.SampleRuntimeTag
	for _, img := range rep.Images {
		if img.Reference == pushed && (img.Digest.String() != headDigest(t, dst, pushed) || len(img.Platforms) != 4) {
			t.Fatalf("report says %s is %s for %v", pushed, img.Digest, img.Platforms)
		}
	}
	if code, out, _ := manifestRun(t, dst, "manifest", "verify", pushed, "--require", sampleRequire); code != 0 {
		t.Fatalf("verify of the pushed list: exit %d\n%s", code, out)
	}

	f, err := os.Open(bundles[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetIn(f)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if code := runWith(context.Background(), root, []string{"push", "-", "--registry", dst + "/mirror", "--insecure-registry", dst}); code != 0 {
		t.Fatalf("rerun from stdin: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "uploaded 0 blobs (0 B)") || !strings.Contains(out.String(), "unchanged") {
		t.Fatalf("rerun output:\n%s", out.String())
	}
	if code, _, stderr := ferry(t, "push", bundles[0], "--registry", dst, "--on-existing-tag", "sometimes"); code != 2 || !strings.Contains(stderr, "merge, overwrite, skip or error") {
		t.Fatalf("bad --on-existing-tag: exit %d: %s", code, stderr)
	}
}

func headDigest(t *testing.T, host, ref string) string {
	t.Helper()
	c := newClient(t, host)
	r, err := c.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, c.Remote(context.Background())...)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}
