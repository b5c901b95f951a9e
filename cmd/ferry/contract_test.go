package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/registrytest"
)

// Every mistake the issue found late fails before any network request:
// the registry here counts connections and must see none.
func TestBundleMistakesFailBeforeNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	ref := ln.Addr().String() + "/rancher/pause:3.6"
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"placeholder typo", []string{"-o", filepath.Join(dir, "{versoin}", "x.tar.zst")}, "unknown placeholder {versoin}: use {version}, {os}, {arch}"},
		{"checksums placeholder typo", []string{"-o", filepath.Join(dir, "x.tar"), "--sidecars", "--checksums", filepath.Join(dir, "sums-{arc}.txt")}, "unknown placeholder {arc}"},
		{"gzip level 99", []string{"-o", filepath.Join(dir, "x.tar.gz"), "--compression", "gzip", "--level", "99"}, "gzip takes 1..9"},
		{"level for the extension", []string{"-o", filepath.Join(dir, "x.tar.gz"), "--level", "30"}, "gzip takes 1..9"},
		{"unwritable output", []string{"-o", "/proc/ferry-x.tar.zst"}, "not writable"},
		{"unwritable checksums", []string{"-o", filepath.Join(dir, "x.tar"), "--sidecars", "--checksums", "/proc/sums.txt"}, "not writable"},
		{"two names of one build", []string{"--windows-version", "1809,ltsc2019", "-o", filepath.Join(dir, "x-{version}.tar.zst")}, `"1809" and "ltsc2019"`},
		{"a revision", []string{"--windows-version", "10.0.17763.999", "-o", filepath.Join(dir, "x.tar.zst")}, "give 10.0.17763"},
		{"a platform twice", []string{"--platform", "linux/amd64,linux/arm64,linux/amd64", "-o", filepath.Join(dir, "x-{version}.tar")}, "linux/amd64 named twice"},
		{"stdout for several", []string{"--windows-version", "1809,2025", "-o", "-"}, "one bundle to stdout"},
		{"stdout and json", []string{"-o", "-", "--format", "json"}, "--format json"},
		{"bad format", []string{"-o", filepath.Join(dir, "x.tar"), "--format", "yaml"}, "use text or json"},
	}
	for _, tc := range cases {
		code, _, stderr := ferry(t, append([]string{"bundle", ref, "--cache", filepath.Join(dir, "cache")}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "resolving") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 mentioning %q before resolving", tc.name, code, stderr, tc.want)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to the registry; every mistake should be found first", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "{versoin}")); err == nil {
		t.Error("the typo'd placeholder became a directory")
	}
}

// bundle --format json names every bundle with its size and sha256, and
// --sidecars writes the image list and sha256sum lines that match it.
func TestBundleJSONAndSidecars(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	sums := filepath.Join(dir, "sha256sum-amd64.txt")
	if err := os.WriteFile(sums, []byte("0000  kept-from-before.tar\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bundle", "-f", writeList(t, host), "--windows-version", "1809,2025", "--insecure-registry", host,
		"-o", filepath.Join(dir, "rke2-windows-{version}-amd64-images.tar.zst"), "--cache", filepath.Join(dir, "cache"),
		"--sidecars", "--format", "json", "-q"}
	code, out, stderr := ferry(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep bundleReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.SchemaVersion != 1 || len(rep.Bundles) != 2 {
		t.Fatalf("report %+v", rep)
	}
	lines := checksumLines(t, sums)
	for i, v := range []string{"1809", "2025"} {
		b := rep.Bundles[i]
		data, err := os.ReadFile(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if !strings.Contains(b.Path, v) || b.Size != int64(len(data)) || b.SHA256 != hex.EncodeToString(sum[:]) || len(b.Images) != 3 {
			t.Errorf("%s: %+v", v, b)
		}
		for _, img := range b.Images {
			if img.Ref == "" || !strings.HasPrefix(img.Digest, "sha256:") || !strings.HasPrefix(img.Platform, "windows/amd64") || len(img.Layers) == 0 {
				t.Errorf("%s: image %+v", v, img)
			}
		}
		list, err := os.ReadFile(b.Path + ".txt")
		if err != nil || strings.Count(string(list), "\n") != 3 || !strings.Contains(string(list), registrytest.SampleRuntime) {
			t.Errorf("%s.txt = %q, %v", b.Path, list, err)
		}
		listSum := sha256.Sum256(list)
		name := filepath.Base(b.Path)
		if lines[name] != b.SHA256 || lines[name+".txt"] != hex.EncodeToString(listSum[:]) {
			t.Errorf("%s: checksum lines %v", name, lines)
		}
	}
	if lines["kept-from-before.tar"] != "0000" || len(lines) != 5 {
		t.Errorf("checksums file lost or duplicated lines: %v", lines)
	}
	// A rerun replaces its own lines rather than appending them again.
	if code, _, stderr := ferry(t, args...); code != 0 {
		t.Fatal(stderr)
	}
	if again := checksumLines(t, sums); len(again) != 5 {
		t.Errorf("after a rerun: %v", again)
	}
}

func checksumLines(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("not sha256sum format: %q", sc.Text())
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s listed twice", name)
		}
		out[name] = sum
	}
	return out
}

// bundle -o - streams one bundle to stdout, and list and verify read it
// back from stdin.
func TestBundleToStdoutListAndVerifyFromStdin(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	ref := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	code, out, stderr := ferry(t, "bundle", ref, "-o", "-", "--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Fatal("wrote a file named -")
	}
	c, err := bundle.ReadContents(context.Background(), strings.NewReader(out))
	if err != nil || c.Compression != bundle.Zstd || len(c.Images()) != 1 {
		t.Fatalf("stdout is not a zstd bundle of one image: %v", err)
	}
	for _, args := range [][]string{{"list", "-", "--format", "json"}, {"verify", "-", "--format", "json"}} {
		code, js, stderr := ferryStdin(t, out, args...)
		var rep struct {
			SchemaVersion int
			OK            *bool
			Images        []json.RawMessage
		}
		if code != 0 || json.Unmarshal([]byte(js), &rep) != nil || rep.SchemaVersion != 1 || len(rep.Images) != 1 || (rep.OK != nil && !*rep.OK) {
			t.Errorf("%v: exit %d, %s %s", args, code, js, stderr)
		}
	}
}

func ferryStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	return runWith(context.Background(), root, args), out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := ferry(t, args...)
		if code != 0 || !strings.HasPrefix(out, "ferry ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	code, out, _ := ferry(t, "version", "--format", "json")
	var b buildInfo
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.SchemaVersion != 1 || b.Version == "" {
		t.Errorf("version json: exit %d, %q", code, out)
	}
}

// The old report spelling still works, with a warning that names the new one.
func TestLegacyOutputFormatWarns(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar")
	ref := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	if code, _, stderr := ferry(t, "bundle", ref, "-o", path, "--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q"); code != 0 {
		t.Fatal(stderr)
	}
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"list", path, "-o", "json"})
	// Without SetOut, cobra's flag warnings go to stderr, as in the binary.
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	i := strings.Index(got, "{")
	if i < 0 || !strings.Contains(got[:i], "use --format") || json.Unmarshal([]byte(got[i:]), &listReport{}) != nil {
		t.Errorf("list -o json: %q", got)
	}
}

// Completion offers the closed sets.
func TestValueCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bundle", "--windows-version", "ltsc"}, "ltsc2022"},
		{[]string{"bundle", "--compression", ""}, "zstd"},
		{[]string{"verify", "--format", ""}, "json"},
		{[]string{"push", "--on-existing-tag", ""}, "overwrite"},
		{[]string{"manifest", "create", "--list-type", ""}, "oci"},
	} {
		code, out, _ := ferry(t, append([]string{"__complete"}, tc.args...)...)
		if code != 0 || !strings.Contains(out, tc.want+"\n") {
			t.Errorf("complete %v: exit %d, %q; want %s", tc.args, code, out, tc.want)
		}
	}
}

// -v logs each registry request, wherever it is on the command line.
func TestVerboseLogsRequests(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	ref := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	code, _, stderr := ferry(t, "-v", "bundle", ref, "-o", filepath.Join(dir, "b.tar"), "--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q")
	if code != 0 || !strings.Contains(stderr, "GET http://"+host+"/v2/rancher/mirrored-pause/manifests/"+registrytest.SamplePauseTag+": 200 OK") {
		t.Errorf("exit %d, stderr lacks the manifest request:\n%s", code, stderr)
	}
	code, _, stderr = ferry(t, "bundle", ref, "-o", filepath.Join(dir, "c.tar"), "--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q")
	if code != 0 || strings.Contains(stderr, "GET ") {
		t.Errorf("without -v: exit %d, stderr %q", code, stderr)
	}
}

// Warnings printed while a bar may be drawn go out whole lines at a time,
// however the library splits its writes.
func TestWarningsAreWholeLines(t *testing.T) {
	var out bytes.Buffer
	p := newByteProgress(&out, "x")
	w := p.warnings()
	for _, s := range []string{"warning: one", " half\nwarning: two\n", "warning: three"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "warning: one half\nwarning: two\n" {
		t.Errorf("printed %q", got)
	}
}
