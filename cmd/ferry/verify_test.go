package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// ferryVerify runs `ferry verify args...` in-process and returns the exit
// code main would return, with what was printed.
func ferryVerify(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCmd()
	root.SetArgs(append([]string{"verify"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	var coded *exitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &coded):
		return coded.code, out.String(), errOut.String() + coded.msg
	}
	return 2, out.String(), errOut.String() + err.Error()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerifyCmdCorpus runs every generated archive through the command:
// valid ones exit 0, malformed ones exit 1 naming the entry at fault.
func TestVerifyCmdCorpus(t *testing.T) {
	for _, tc := range verifytest.Corpus() {
		t.Run(tc.Name, func(t *testing.T) {
			args := []string{writeTemp(t, "archive.tar", tc.Data)}
			if tc.Strict {
				args = append(args, "--strict")
			}
			if tc.AllowExt {
				args = append(args, "--allow-extra")
			}
			code, out, errOut := ferryVerify(t, args...)
			want := 1
			if tc.WantOK {
				want = 0
			}
			if code != want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr: %s", code, want, out, errOut)
			}
			if !tc.WantOK && !strings.Contains(out, tc.Mention) {
				t.Fatalf("output does not mention %q:\n%s", tc.Mention, out)
			}
			if !tc.WantOK && !strings.Contains(errOut, "problem(s) found") {
				t.Fatalf("stderr: %q", errOut)
			}
		})
	}
}

func TestVerifyCmdExpectations(t *testing.T) {
	f := verifytest.NewFixture(11, 8192)
	archive := writeTemp(t, "rke2-windows-1809-amd64-images.tar.zst", verifytest.Zstd(f.Tar))
	list := writeTemp(t, "windows-images.txt", []byte("# rke2\nrancher/rke2-runtime:v1\ndocker.io/rancher/mirrored-pause:3.6\n"))
	partial := writeTemp(t, "partial.txt", []byte("index.docker.io/rancher/rke2-runtime:v1\n"))
	missing := writeTemp(t, "missing.txt", []byte("rancher/rke2-runtime:v1\nrancher/kube-proxy:v1.30\n"))
	cases := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"plain", nil, 0, "verified: 2 images"},
		{"images and windows version", []string{"-f", list, "--windows-version", "1809"}, 0, "ok  docker.io/rancher/rke2-runtime:v1"},
		{"exact", []string{"-f", list, "--exact"}, 0, "3 layer(s) (1 foreign, not stored)"},
		{"build number", []string{"--platform", "windows/amd64:10.0.17763"}, 0, "verified"},
		{"revision refused", []string{"--platform", "windows/amd64:10.0.17763.999"}, 2, "give 10.0.17763"},
		{"subset not exact", []string{"-f", partial}, 0, "verified"},
		{"subset exact", []string{"-f", partial, "--exact"}, 1, "mirrored-pause:3.6"},
		{"missing image", []string{"-f", missing}, 1, "index.docker.io/rancher/kube-proxy:v1.30"},
		{"wrong windows version", []string{"--windows-version", "ltsc2022"}, 1, "expected windows/amd64:10.0.20348, found windows/amd64:10.0.17763.5458"},
		{"wrong platform", []string{"--platform", "linux/amd64"}, 1, "expected linux/amd64, found windows/amd64:10.0.17763.5458"},
		{"bad output", []string{"--output", "yaml"}, 2, "use text or json"},
		{"bad windows version", []string{"--windows-version", "95"}, 2, "unknown Windows version"},
		{"conflicting platform", []string{"--windows-version", "1809", "--platform", "linux/amd64"}, 2, "implies windows/amd64"},
		{"exact without images", []string{"--exact"}, 2, "--exact needs -f FILE"},
		{"no image list", []string{"-f", "/nonexistent/list.txt"}, 2, "image list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := ferryVerify(t, append([]string{archive}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.mention) {
				t.Fatalf("exit %d (want %d), want mention %q\nstdout:\n%s\nstderr: %s", code, tc.code, tc.mention, out, errOut)
			}
		})
	}
}

func TestVerifyCmdIOErrors(t *testing.T) {
	if code, _, errOut := ferryVerify(t, filepath.Join(t.TempDir(), "nope.tar.zst")); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing file: exit %d, %s", code, errOut)
	}
	if code, _, errOut := ferryVerify(t, t.TempDir()); code != 2 {
		t.Fatalf("directory: exit %d, %s", code, errOut)
	}
	if code, _, _ := ferryVerify(t); code != 2 {
		t.Fatalf("no argument: exit %d", code)
	}
}

func TestVerifyCmdJSON(t *testing.T) {
	f := verifytest.NewFixture(12, 8192)
	es := verifytest.Entries(f.Tar)
	i := verifytest.Find(es, f.Layer)
	es[i].Data = bytes.Clone(es[i].Data)
	es[i].Data[200] ^= 1
	for _, tc := range []struct {
		data []byte
		code int
	}{{f.Tar, 0}, {verifytest.Tar(es), 1}} {
		code, out, errOut := ferryVerify(t, writeTemp(t, "b.tar", tc.data), "--format", "json")
		if code != tc.code {
			t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
		}
		var rep struct {
			SchemaVersion int
			File, Subject string
			OK            bool
			Errors        int
			Images        []struct {
				Names []string
				OK    bool
			}
			Checks []struct {
				Check, Subject, Expected, Found, Severity string
				OK                                        bool
			}
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if rep.SchemaVersion != 1 || rep.Subject != rep.File || rep.OK != (tc.code == 0) || len(rep.Images) != 2 || len(rep.Checks) < 10 {
			t.Fatalf("report %+v", rep)
		}
		for _, c := range rep.Checks {
			if !c.OK && c.Check == "blob-digest" && (c.Subject != f.Layer || c.Expected == "" || c.Found == "" || c.Severity != "error") {
				t.Fatalf("failed check %+v", c)
			}
		}
	}
}

// TestVerifyCmdModes: both reports say which mode ran, and a layer whose
// digest is right but whose diff_id is not fails only the full mode.
func TestVerifyCmdModes(t *testing.T) {
	tc := corpusCase(t, "wrong diff_id")
	archive := writeTemp(t, "diffid.tar", tc.Data)
	for _, m := range []struct {
		args        []string
		code        int
		text, jmode string
	}{
		{nil, 1, "mode: full (", "full"},
		{[]string{"--digests-only"}, 0, "mode: digests only (", "digests"},
	} {
		code, out, errOut := ferryVerify(t, append([]string{archive}, m.args...)...)
		if code != m.code || !strings.Contains(out, m.text) {
			t.Fatalf("%v: exit %d (want %d), want %q:\n%s%s", m.args, code, m.code, m.text, out, errOut)
		}
		_, out, _ = ferryVerify(t, append([]string{archive, "--format", "json"}, m.args...)...)
		var rep struct{ Mode string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Mode != m.jmode {
			t.Fatalf("%v: JSON mode %q (%v), want %q", m.args, rep.Mode, err, m.jmode)
		}
	}
}

func corpusCase(t *testing.T, name string) verifytest.Case {
	t.Helper()
	for _, tc := range verifytest.Corpus() {
		if tc.Name == name {
			return tc
		}
	}
	t.Fatalf("no corpus case %q", name)
	return verifytest.Case{}
}
