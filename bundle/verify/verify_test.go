package verify_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	legacytarball "github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/registry/platform"
)

func verifyData(t testing.TB, data []byte, opts ...verify.Option) *verify.Report {
	t.Helper()
	rep, err := verify.Archive(context.Background(), bytes.NewReader(data), opts...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func problems(rep *verify.Report) string {
	var lines []string
	for _, c := range rep.Problems() {
		lines = append(lines, string(c.Severity)+" "+c.String())
	}
	return strings.Join(lines, "\n")
}

func TestVerifyFerryBundles(t *testing.T) {
	blobs := verifytest.Blobs{}
	images := twoImages(t, blobs)
	for _, skip := range []bool{false, true} {
		for _, c := range []bundle.Compression{bundle.None, bundle.Gzip, bundle.Zstd} {
			t.Run(fmt.Sprintf("%s skip=%v", c, skip), func(t *testing.T) {
				rep := verifyData(t, write(t, images, blobs, bundle.WithCompression(c, 0), bundle.WithSkipForeignLayers(skip)))
				if !rep.OK() || len(rep.Problems()) != 0 {
					t.Fatalf("problems:\n%s", problems(rep))
				}
				if rep.Compression != c || rep.Format != "oci+docker" || !rep.MetadataFirst || len(rep.Images) != 2 {
					t.Fatalf("report %+v", rep)
				}
				img := rep.Images[0]
				if !img.OK || img.Layers != 3 || img.Platform.OSVersion != "10.0.17763.5458" || img.Names[0] != "docker.io/rancher/rke2-runtime:v1" {
					t.Fatalf("image %+v", img)
				}
				if want := map[bool]int{true: 1, false: 0}[skip]; img.Missing != want {
					t.Fatalf("not stored %d, want %d", img.Missing, want)
				}
				// 3 own layers + the shared base, which is not stored when skipped;
				// plus 2 manifests and 2 configs for the digests.
				layers := map[bool]int{true: 3, false: 4}[skip]
				if countChecks(rep, "diff-id", true) != layers || countChecks(rep, "blob-digest", true) != layers+4 {
					t.Fatalf("diff-id checks %d, blob-digest %d", countChecks(rep, "diff-id", true), countChecks(rep, "blob-digest", true))
				}
			})
		}
	}
}

func countChecks(rep *verify.Report, name string, ok bool) int {
	n := 0
	for _, c := range rep.Checks {
		if c.Name == name && c.OK == ok {
			n++
		}
	}
	return n
}

// TestVerifyCorpus runs every generated archive, good and malformed, and
// checks the verdict names the right check and entry.
func TestVerifyCorpus(t *testing.T) {
	cases := verifytest.Corpus()
	if len(cases) < 30 {
		t.Fatalf("corpus has %d cases", len(cases))
	}
	malformed := 0
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			start := time.Now()
			rep := verifyData(t, tc.Data, verify.WithStrict(tc.Strict), verify.WithAllowExtra(tc.AllowExt))
			// A guard against a hang on hostile input, not a speed claim:
			// under -race on 2 busy cores the 140k-entry case takes ~20 s.
			if d := time.Since(start); d > 2*time.Minute {
				t.Errorf("took %s", d)
			}
			t.Logf("%d bytes, %s:\n%s", len(tc.Data), time.Since(start).Round(time.Millisecond), problems(rep))
			if tc.WantOK {
				if !rep.OK() {
					t.Fatalf("want OK, problems:\n%s", problems(rep))
				}
				return
			}
			if rep.OK() {
				t.Fatalf("verified a broken archive; report: %s", problems(rep))
			}
			if !mentions(rep, tc.Check, tc.Mention) {
				t.Fatalf("no failed %q check mentioning %q; problems:\n%s", tc.Check, tc.Mention, problems(rep))
			}
		})
		if !tc.WantOK {
			malformed++
		}
	}
	if malformed < 30 {
		t.Errorf("%d malformed archives, want at least 30", malformed)
	}
}

func mentions(rep *verify.Report, check, text string) bool {
	for _, c := range rep.Problems() {
		if c.Name == check && c.Severity == verify.SeverityError && strings.Contains(c.String(), text) {
			return true
		}
	}
	return false
}

func TestVerifyExpectations(t *testing.T) {
	f := verifytest.NewFixture(3, 4096)
	cases := []struct {
		name  string
		refs  []string
		exact bool
		want  string // a failing check, or "" for OK
	}{
		{"all listed, other spellings", []string{"rancher/rke2-runtime:v1", "index.docker.io/rancher/mirrored-pause:3.6"}, true, ""},
		{"subset", []string{"docker.io/rancher/rke2-runtime:v1"}, false, ""},
		{"subset exact", []string{"docker.io/rancher/rke2-runtime:v1"}, true, "unexpected-image"},
		{"by digest", []string{"rancher/rke2-runtime@" + f.Images[0].Descriptor.Digest.String()}, false, ""},
		{"missing", []string{"rancher/rke2-runtime:v2"}, false, "expected-image"},
		{"invalid", []string{"UPPER/Case::x"}, false, "expected-image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := verifyData(t, f.Tar, verify.WithExpectedImages(tc.refs, tc.exact))
			if tc.want == "" && !rep.OK() {
				t.Fatalf("problems:\n%s", problems(rep))
			}
			if tc.want != "" && countChecks(rep, tc.want, false) == 0 {
				t.Fatalf("want a failed %s check; problems:\n%s", tc.want, problems(rep))
			}
		})
	}
}

func TestVerifyPlatform(t *testing.T) {
	f := verifytest.NewFixture(4, 4096)
	ltsc2022, err := platform.ParseTarget("windows/amd64:10.0.20348")
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyData(t, f.Tar, verify.WithPlatform(ltsc2022))
	if rep.OK() || countChecks(rep, "platform", false) != 2 || !mentions(rep, "platform", "found windows/amd64:10.0.17763.5458") {
		t.Fatalf("problems:\n%s", problems(rep))
	}
	for _, img := range rep.Images {
		if img.OK {
			t.Errorf("%v marked OK with a platform failure", img.Names)
		}
	}
	ltsc2019, _ := platform.ParseTarget("windows/amd64:10.0.17763")
	if rep := verifyData(t, f.Tar, verify.WithPlatform(ltsc2019)); !rep.OK() || countChecks(rep, "platform", true) != 2 {
		t.Fatalf("same build must pass; problems:\n%s", problems(rep))
	}
	// A Windows image built FROM scratch has no os.version: a warning.
	blobs := verifytest.Blobs{}
	scratch := verifytest.Image("docker.io/rancher/scratch:1", "1", v1.Platform{OS: "windows", Architecture: "amd64"},
		[]verifytest.Layer{verifytest.GzipLayer(verifytest.TarLayer(5, 512))}, blobs)
	rep = verifyData(t, verifytest.Write([]bundle.Image{scratch}, blobs, false), verify.WithPlatform(ltsc2022))
	if !rep.OK() || rep.Count(verify.SeverityWarning) != 1 || !strings.Contains(rep.Problems()[0].Message, "no os.version") {
		t.Fatalf("unconfirmed must warn; problems:\n%s", problems(rep))
	}
}

// TestVerifyMarksImagesOfABadSharedLayer checks per-image verdicts.
func TestVerifyImageVerdicts(t *testing.T) {
	f := verifytest.NewFixture(5, 4096)
	es := verifytest.Entries(f.Tar)
	i := verifytest.Find(es, f.Layer)
	es[i].Data = bytes.Clone(es[i].Data)
	es[i].Data[100] ^= 1
	rep := verifyData(t, verifytest.Tar(es))
	if rep.OK() || rep.Images[0].OK || !rep.Images[1].OK {
		t.Fatalf("images %+v", rep.Images)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestVerifyIOErrorIsAnError(t *testing.T) {
	_, err := verify.Archive(context.Background(), io.MultiReader(bytes.NewReader(verifytest.NewFixture(6, 4096).Tar[:3000]), &failingReader{}))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := verify.Archive(ctx, bytes.NewReader(verifytest.NewFixture(6, 4096).Tar)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestVerifyOtherWriters checks archives written by other tools' code:
// go-containerregistry's tarball (crane pull), its legacy docker save
// format, and an OCI layout with a nested multi-platform index.
func TestVerifyOtherWriters(t *testing.T) {
	img := verifytest.RandomImage(t, 4096, 3)
	tag, _ := name.NewTag("rancher/x:1")
	var crane, legacy bytes.Buffer
	if err := tarball.Write(tag, img, &crane); err != nil {
		t.Fatal(err)
	}
	if err := legacytarball.Write(tag, img, &legacy); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"crane": crane.Bytes(), "legacy": legacy.Bytes(), "oci layout": ociLayoutTar(t, img)} {
		t.Run(name, func(t *testing.T) {
			rep := verifyData(t, data, verify.WithExpectedImages([]string{"docker.io/rancher/x:1"}, false))
			if !rep.OK() || rep.Count(verify.SeverityWarning) > 1 {
				t.Fatalf("%s problems:\n%s", rep.Format, problems(rep))
			}
			t.Logf("%s: %d images, %d checks, warnings:\n%s", rep.Format, len(rep.Images), len(rep.Checks), problems(rep))
		})
	}
}

// ociLayoutTar writes img and a 2-platform index into an OCI layout
// directory and tars it, directories included, as `tar -C dir -c .` would.
func ociLayoutTar(t *testing.T, img v1.Image) []byte {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{bundle.AnnotationRefName: "docker.io/rancher/x:1"})); err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{bundle.AnnotationContainerdName: "docker.io/rancher/multi:1"})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		h, _ := tar.FileInfoHeader(fi, "")
		rel, _ := filepath.Rel(dir, path)
		h.Name = "./" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil {
			_, err = tw.Write(data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// TestVerifySourceIndex checks repo:tag@<list digest> pins against the
// list a bundle keeps for each image.
func TestVerifySourceIndex(t *testing.T) {
	f := verifytest.NewFixture(5, 4096)
	images := append([]bundle.Image(nil), f.Images...)
	rt, pz := verifytest.List(&images[0]), verifytest.List(&images[1])
	pinned := verifytest.Write(images, f.Blobs, true)
	rtList, pzList := rt.Descriptor.Digest.String(), pz.Descriptor.Digest.String()
	rtManifest := images[0].Descriptor.Digest.String()
	other := "sha256:" + strings.Repeat("ab", 32)

	rep := verifyData(t, pinned, verify.WithExpectedImages([]string{"rancher/rke2-runtime:v1@" + rtList, "rancher/mirrored-pause:3.6@" + pzList}, true))
	if !rep.OK() || len(rep.Problems()) != 0 || rep.Images[0].SourceIndex != rtList || countChecks(rep, "source-index", true) != 2 {
		t.Fatalf("pinned lists: problems:\n%s\nimages %+v", problems(rep), rep.Images)
	}
	for _, ok := range [][]string{
		{"rancher/rke2-runtime:v1@" + rtManifest},
		{"docker.io/rancher/rke2-runtime@" + rtList},
	} {
		if rep := verifyData(t, pinned, verify.WithExpectedImages(ok, false)); !rep.OK() {
			t.Errorf("%s: problems:\n%s", ok, problems(rep))
		}
	}
	for _, bad := range []string{"rancher/rke2-runtime:v1@" + other, "rancher/rke2-runtime:v1@" + pzList, "rancher/rke2-runtime:v2@" + rtList} {
		if rep := verifyData(t, pinned, verify.WithExpectedImages([]string{bad}, false)); rep.OK() {
			t.Errorf("%s passed", bad)
		}
	}
	rep = verifyData(t, pinned, verify.WithExpectedImages([]string{"rancher/rke2-runtime:v1@" + other}, false))
	for _, text := range []string{other, rtManifest, rtList, "rebuild the bundle from the pinned list"} {
		if !mentions(rep, "expected-image", text) {
			t.Errorf("the failure does not mention %q:\n%s", text, problems(rep))
		}
	}

	entries := verifytest.Entries(pinned)
	at := verifytest.Find(entries, bundle.BlobPath(rt.Descriptor.Digest))
	entries[at].Data = bytes.Replace(entries[at].Data, []byte(rtManifest), []byte(other), 1)
	rep = verifyData(t, verifytest.Tar(entries), verify.WithExpectedImages([]string{"rancher/rke2-runtime:v1@" + rtList}, false))
	if countChecks(rep, "expected-image", false) != 1 || !mentions(rep, "source-index", "does not hash to its digest") || countChecks(rep, "blob-digest", false) != 1 {
		t.Fatalf("tampered list: problems:\n%s", problems(rep))
	}
}

func TestInvalidOptionsAreErrors(t *testing.T) {
	for _, opt := range []verify.Option{verify.WithJobs(0), verify.WithMaxExpansion(0), verify.WithSpill("", -1), nil} {
		rep, err := verify.Archive(context.Background(), bytes.NewReader(nil), opt)
		if !errors.Is(err, verify.ErrInvalidOption) || rep != nil {
			t.Errorf("got %v, %v", rep, err)
		}
	}
	if _, err := verify.Archive(context.Background(), nil); !errors.Is(err, verify.ErrInvalidOption) {
		t.Errorf("nil reader: %v", err)
	}
}
