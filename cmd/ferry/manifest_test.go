package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// manifestServe starts an in-memory registry holding a small sample set.
func manifestServe(t *testing.T) string {
	t.Helper()
	s, err := registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := s.Push(context.Background(), newClient(t, host), host); err != nil {
		t.Fatal(err)
	}
	return host
}

// manifestRun runs ferry as main does, returning exit code and output.
func manifestRun(t *testing.T, host string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	code := runWith(context.Background(), root, append(args, "--insecure-registry", host))
	return code, out.String(), errOut.String()
}

func samplePlatformTags(host string) []string { return registrytest.SampleListSources(host) }

const sampleRequire = "linux/amd64,windows/amd64:1809,windows/amd64:ltsc2022,windows/amd64:2025"

func TestManifestCreateInspectVerify(t *testing.T) {
	host := manifestServe(t)
	target := host + "/rancher/rke2-runtime:v1.31.2"
	code, out, errOut := manifestRun(t, host, append([]string{"manifest", "create", target}, samplePlatformTags(host)...)...)
	if code != 0 {
		t.Fatalf("create exit %d: %s", code, errOut)
	}
	digest := strings.TrimSpace(out)
	if !strings.HasPrefix(digest, "sha256:") || strings.Contains(digest, "\n") {
		t.Fatalf("create should print only the digest, got %q", out)
	}

	code, out, errOut = manifestRun(t, host, "manifest", "inspect", target, "--raw")
	sum := sha256.Sum256([]byte(out))
	if code != 0 || "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("--raw exit %d, bytes hash to %x, digest %s: %s", code, sum, digest, errOut)
	}

	code, out, _ = manifestRun(t, host, "manifest", "inspect", target, "--format", "json")
	var list struct {
		Digest    string              `json:"digest"`
		Manifests []json.RawMessage   `json:"manifests"`
		DMap      map[string][]string `json:"dmap"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("inspect json exit %d: %v\n%s", code, err, out)
	}
	if list.Digest != digest || len(list.Manifests) != 4 || strings.Join(list.DMap[digest], ",") != "v1.31.2" {
		t.Fatalf("inspect json %+v", list)
	}

	code, out, _ = manifestRun(t, host, "manifest", "inspect", target)
	for _, want := range []string{"windows/amd64:10.0.17763.5458", "application/vnd.docker.distribution.manifest.v2+json", `"` + digest + `": ["v1.31.2"]`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = manifestRun(t, host, "manifest", "verify", target, "--require", sampleRequire)
	if code != 0 || !strings.Contains(out, "verified:") {
		t.Fatalf("verify exit %d:\n%s%s", code, out, errOut)
	}
}

// TestManifestVerifyText checks the text report: list-wide checks, then
// each entry, failures spelled out and passes summed up.
func TestManifestVerifyText(t *testing.T) {
	host := manifestServe(t)
	target := host + "/rancher/rke2-runtime:v1"
	if code, _, errOut := manifestRun(t, host, append([]string{"manifest", "create", target}, samplePlatformTags(host)[:2]...)...); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := manifestRun(t, host, "manifest", "verify", target, "--require", "linux/amd64,windows/amd64:ltsc2022")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"ok    required linux/amd64: linux/amd64 sha256:",
		"FAIL  required windows/amd64:10.0.20348: missing",
		"ok    windows/amd64:10.0.17763.5458 sha256:",
		"passed: known-platform, unique, manifest, digest, size, media-type, blob x2, config-platform, foreign-urls",
		"1 of ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestManifestVerifyJSONAndExitCodes(t *testing.T) {
	host := manifestServe(t)
	target := host + "/rancher/rke2-runtime:v1.31.2"
	if code, _, errOut := manifestRun(t, host, append([]string{"manifest", "create", target}, samplePlatformTags(host)[:2]...)...); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := manifestRun(t, host, "manifest", "verify", target, "--require", "linux/amd64,linux/arm64", "--format", "json")
	if code != 1 || !strings.Contains(errOut, "1 problems found") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var report indexJSON
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	var armFailed, passed int
	for _, c := range report.Checks {
		if c.Check == registry.CheckRequired && c.Subject == "linux/arm64" && !c.OK && c.Severity == "error" {
			armFailed++
		}
		if c.OK {
			passed++
		}
	}
	if report.SchemaVersion != 1 || report.Subject != target || report.OK || report.Errors != 1 || armFailed != 1 || passed < 10 {
		t.Fatalf("report ok=%v errors=%d arm=%d passed=%d", report.OK, report.Errors, armFailed, passed)
	}

	file := filepath.Join(t.TempDir(), "platforms.txt")
	if err := os.WriteFile(file, []byte("# rke2 Windows\nwindows/amd64:1809\n\nlinux/amd64  # and linux\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := manifestRun(t, host, "manifest", "verify", target, "-f", file); code != 0 {
		t.Fatalf("-f exit %d:\n%s%s", code, out, errOut)
	}

	for name, args := range map[string][]string{
		"missing list":    {"manifest", "verify", host + "/nope/nothing:v1"},
		"bad platform":    {"manifest", "verify", target, "--require", "windows/amd64:95"},
		"missing file":    {"manifest", "verify", target, "-f", filepath.Join(t.TempDir(), "none")},
		"bad output":      {"manifest", "verify", target, "-o", "yaml"},
		"bad format":      {"manifest", "create", target, samplePlatformTags(host)[0], "--format", "v1"},
		"too few args":    {"manifest", "create", target},
		"duplicate entry": {"manifest", "create", host + "/x/y:v1", samplePlatformTags(host)[0], host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag, "--platform", "linux/amd64"},
	} {
		if code, _, errOut := manifestRun(t, host, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", name, code, errOut)
		}
	}
}

func TestManifestVerifyMissingChildExitsOne(t *testing.T) {
	host := manifestServe(t)
	target := host + "/rancher/rke2-runtime:v1.31.2"
	if code, _, errOut := manifestRun(t, host, append([]string{"manifest", "create", target}, samplePlatformTags(host)...)...); code != 0 {
		t.Fatal(errOut)
	}
	client := newClient(t, host)
	list, err := client.InspectIndex(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := client.ParseReference(host + "/rancher/rke2-runtime@" + list.Manifests[1].Digest.String())
	if err := remote.Delete(child, client.Remote(context.Background())...); err != nil {
		t.Fatal(err)
	}
	code, out, _ := manifestRun(t, host, "manifest", "verify", target, "--require", sampleRequire)
	if code != 1 || !strings.Contains(out, "FAIL  manifest: ") || !strings.Contains(out, "MANIFEST_UNKNOWN") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestManifestCreateDryRun(t *testing.T) {
	host := manifestServe(t)
	target := host + "/dry/run:v1"
	code, out, errOut := manifestRun(t, host, append([]string{"manifest", "create", "--dry-run", "--format", "oci", target}, samplePlatformTags(host)...)...)
	if code != 0 {
		t.Fatal(errOut)
	}
	var idx struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(out), &idx); err != nil || idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 4 {
		t.Fatalf("dry run printed %v %s", err, out)
	}
	if !strings.Contains(errOut, "nothing pushed") {
		t.Errorf("stderr %q", errOut)
	}
	if code, _, _ := manifestRun(t, host, "manifest", "inspect", target); code != 2 {
		t.Fatalf("dry run pushed the list (inspect exit %d)", code)
	}
}

func TestSamplePushListsRefs(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	code, out, errOut := manifestRun(t, host, "sample", "push", "--registry", host, "--size", "65536")
	if code != 0 || !strings.Contains(out, host+"/rancher/rke2-runtime:v1.31.2-rke2r1-windows-1809\n") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

// newClient is a registry client that may use plain HTTP to host.
func newClient(t testing.TB, host string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(registry.WithInsecureRegistries(host))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
