package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/registrytest"
)

var (
	sampleOnce sync.Once
	sample     *registrytest.Sample
	sampleErr  error
)

// blobCounter counts blob downloads per path, to prove dedupe.
type blobCounter struct {
	mu    sync.Mutex
	gets  map[string]int
	bytes int64
}

// serveSample serves the sample set from ggcr's in-memory registry behind
// a counter of blob GETs.
func serveSample(t *testing.T) (string, *blobCounter) {
	t.Helper()
	sampleOnce.Do(func() {
		sample, sampleErr = registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 512 << 10})
	})
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	counter := &blobCounter{gets: map[string]int{}}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			counter.mu.Lock()
			counter.gets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			counter.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := sample.Push(context.Background(), newClient(t, host), host); err != nil {
		t.Fatal(err)
	}
	counter.gets = map[string]int{}
	return host, counter
}

// ferry runs a command as the binary would, returning exit code and output.
func ferry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	code := runWith(context.Background(), root, args)
	return code, out.String(), errOut.String()
}

func writeList(t *testing.T, host string) string {
	path := filepath.Join(t.TempDir(), "images.txt")
	text := "# windows images\n\n" + strings.Join(sample.Refs(host), "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBundleEveryWindowsVersionFetchesEachBlobOnce(t *testing.T) {
	host, counter := serveSample(t)
	dir := t.TempDir()
	code, out, stderr := ferry(t, "bundle", "-f", writeList(t, host), "--windows-version", "1809,ltsc2022,2025",
		"-o", filepath.Join(dir, "rke2-windows-{version}-amd64-images.tar.zst"), "--insecure-registry", host,
		"--cache", filepath.Join(dir, "cache"), "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, v := range []string{"1809", "ltsc2022", "2025"} {
		path := filepath.Join(dir, "rke2-windows-"+v+"-amd64-images.tar.zst")
		if !strings.Contains(out, path) {
			t.Errorf("output does not name %s: %s", path, out)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := bundle.ReadContents(context.Background(), f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !c.MetadataFirst || c.Compression != bundle.Zstd || len(c.Images()) != 3 {
			t.Fatalf("%s: metadataFirst=%v compression=%s images=%d", v, c.MetadataFirst, c.Compression, len(c.Images()))
		}
	}
	for blob, n := range counter.gets {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", blob, n)
		}
	}
	// A second run is served from the cache: no layer is fetched again,
	// only the configs, which are not cached.
	configs := map[string]bool{}
	for blob := range counter.gets {
		configs[blob] = true
	}
	code, _, stderr = ferry(t, "bundle", "-f", writeList(t, host), "--windows-version", "1809",
		"-o", filepath.Join(dir, "again.tar.gz"), "--insecure-registry", host, "--cache", filepath.Join(dir, "cache"), "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	refetched := 0
	for _, n := range counter.gets {
		if n > 1 {
			refetched++
		}
	}
	// 1809 needs the runtime, pause and scratch configs and nothing else.
	if refetched != 3 {
		t.Errorf("second run fetched %d blobs again, want the 3 configs: %v", refetched, counter.gets)
	}
}

func TestBundleDeterministicAcrossRuns(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	var sums []string
	for i, cache := range []string{"c1", "c2"} {
		out := filepath.Join(dir, "pause-"+cache+".tar.zst")
		code, _, stderr := ferry(t, "bundle", host+"/"+registrytest.SamplePause+":"+registrytest.SamplePauseTag, "--windows-version", "ltsc2022",
			"-o", out, "--insecure-registry", host, "--cache", filepath.Join(dir, cache), "-q")
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, stderr)
		}
		b, _ := os.ReadFile(out)
		sums = append(sums, string(sha(b)))
	}
	if sums[0] != sums[1] {
		t.Fatal("two runs with fresh caches gave different bytes")
	}
}

func TestBundleUsageErrors(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	ref := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no images", []string{"bundle", "-o", filepath.Join(dir, "x.tar")}, "no images"},
		{"no output", []string{"bundle", ref}, "output"},
		{"several versions one path", []string{"bundle", ref, "--windows-version", "1809,2025", "-o", filepath.Join(dir, "x.tar")}, "{version}"},
		{"unknown version", []string{"bundle", ref, "--windows-version", "1810", "-o", filepath.Join(dir, "x.tar")}, "1809|ltsc2019"},
		{"unknown extension", []string{"bundle", ref, "-o", filepath.Join(dir, "x.zip")}, "--compression"},
		{"bad platform", []string{"bundle", ref, "--platform", "linux", "-o", filepath.Join(dir, "x.tar")}, "os/arch"},
		{"missing list", []string{"bundle", "-f", filepath.Join(dir, "nope.txt"), "-o", filepath.Join(dir, "x.tar")}, "nope.txt"},
		{"no such platform", []string{"bundle", ref, "--platform", "linux/s390x", "-o", filepath.Join(dir, "x.tar"), "--insecure-registry", host, "--cache", filepath.Join(dir, "c")}, "linux/amd64"},
		{"missing image", []string{"bundle", host + "/nope/nothing:1", ref, "-o", filepath.Join(dir, "x.tar"), "--insecure-registry", host, "--cache", filepath.Join(dir, "c")}, "nope/nothing"},
	}
	for _, tc := range cases {
		code, _, stderr := ferry(t, append(tc.args, "-q")...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 mentioning %q", tc.name, code, stderr, tc.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("a failed run left %s", e.Name())
		}
	}
}

func TestListJSONAndTable(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	if code, _, stderr := ferry(t, "bundle", "-f", writeList(t, host), "--windows-version", "1809", "-o", out,
		"--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q"); code != 0 {
		t.Fatal(stderr)
	}
	code, table, _ := ferry(t, "list", out)
	if code != 0 || !strings.Contains(table, "windows/amd64:10.0.17763.5458") || !strings.Contains(table, registrytest.SampleRuntime) {
		t.Fatalf("table: %s", table)
	}
	code, js, _ := ferry(t, "list", "--format", "json", out)
	if code != 0 || !strings.Contains(js, `"metadataFirst": true`) || !strings.Contains(js, `"os.version": "10.0.17763.5458"`) {
		t.Fatalf("json: %s", js)
	}
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestBundleCorruptCacheEntry flips a byte in a cached layer: the bundle
// fails without leaving a file, the entry is dropped, and a rerun fetches it.
func TestBundleCorruptCacheEntry(t *testing.T) {
	host, counter := serveSample(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	ref := host + "/" + registrytest.SamplePause + ":" + registrytest.SamplePauseTag
	args := []string{"bundle", ref, "--windows-version", "2025", "--insecure-registry", host, "--cache", cache, "-q", "-o"}
	if code, _, stderr := ferry(t, append(args, filepath.Join(dir, "first.tar"))...); code != 0 {
		t.Fatal(stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "sha256"))
	var victim string
	for _, e := range entries {
		if info, _ := e.Info(); info.Size() > 100<<10 {
			victim = filepath.Join(cache, "sha256", e.Name())
		}
	}
	if victim == "" {
		t.Fatal("no layer in the cache")
	}
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 0xff
	os.WriteFile(victim, b, 0o600)

	code, _, stderr := ferry(t, append(args, filepath.Join(dir, "second.tar"))...)
	if code != 2 || !strings.Contains(stderr, "digest mismatch") || !strings.Contains(stderr, "run again") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "second.tar")); !os.IsNotExist(err) {
		t.Fatal("a bundle was written from a corrupt cache entry")
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Fatal("the corrupt entry is still cached")
	}
	if code, _, stderr := ferry(t, append(args, filepath.Join(dir, "third.tar"))...); code != 0 {
		t.Fatal(stderr)
	}
	if counter.gets["sha256:"+filepath.Base(victim)] != 2 {
		t.Fatalf("the dropped layer was fetched %d times in all, want 2", counter.gets["sha256:"+filepath.Base(victim)])
	}
	first, _ := os.ReadFile(filepath.Join(dir, "first.tar"))
	third, _ := os.ReadFile(filepath.Join(dir, "third.tar"))
	if !bytes.Equal(first, third) {
		t.Fatal("bundle after refetch differs")
	}
}

// TestBundleCreatesOutputDirectory: `-o dist/...` works on a fresh checkout.
func TestBundleCreatesOutputDirectory(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "dist", "sub", "pause.tar.zst")
	code, _, stderr := ferry(t, "bundle", host+"/"+registrytest.SamplePause+":"+registrytest.SamplePauseTag,
		"-o", out, "--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q")
	if code != 0 {
		t.Fatal(stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

// TestBundlePinnedListVerifies bundles from lists pinned by their manifest
// list digest, then verifies the bundle against the same image list.
func TestBundlePinnedListVerifies(t *testing.T) {
	host, _ := serveSample(t)
	dir := t.TempDir()
	client := newClient(t, host)
	digests := map[string]string{}
	for _, ref := range sample.Refs(host) {
		r, err := client.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Head(r, client.Remote(context.Background())...)
		if err != nil {
			t.Fatal(err)
		}
		digests[ref] = d.Digest.String()
	}
	runtime, pause := sample.Refs(host)[0], sample.Refs(host)[1]
	pinned := writeTemp(t, "pinned.txt", []byte(strings.Join([]string{
		runtime + "@" + digests[runtime], pause + "@" + digests[pause], sample.Refs(host)[2]}, "\n")+"\n"))
	out := filepath.Join(dir, "pinned.tar.zst")
	if code, _, stderr := ferry(t, "bundle", "-f", pinned, "--windows-version", "1809", "-o", out,
		"--insecure-registry", host, "--cache", filepath.Join(dir, "c"), "-q"); code != 0 {
		t.Fatal(stderr)
	}
	if code, stdout, stderr := ferryVerify(t, out, "-f", pinned, "--exact"); code != 0 {
		t.Fatalf("verify of its own list: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, js, _ := ferry(t, "list", "--format", "json", out); code != 0 || !strings.Contains(js, `"sourceIndex": "`+digests[runtime]+`"`) {
		t.Fatalf("list json does not show the runtime's list %s:\n%s", digests[runtime], js)
	}
	// A list pinning another digest for the runtime tag: the bundle was
	// not built from it.
	other := writeTemp(t, "other.txt", []byte(runtime+"@"+digests[pause]+"\n"))
	code, stdout, _ := ferryVerify(t, out, "-f", other)
	if code != 1 || !strings.Contains(stdout, digests[pause]) || !strings.Contains(stdout, digests[runtime]) ||
		!strings.Contains(stdout, "rebuild the bundle from the pinned list") {
		t.Fatalf("verify against another list digest: exit %d\n%s", code, stdout)
	}
}
