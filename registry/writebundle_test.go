package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

func TestWriteBundlesWritesEachTarget(t *testing.T) {
	host, c, _ := serveSample(t)
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dist")
	files := []BundleFile{
		{Path: filepath.Join(dir, "1809.tar.zst"), Target: windows(t, "1809")},
		{Path: filepath.Join(dir, "2025.tar.gz"), Target: windows(t, "2025")},
	}
	var written []string
	fetched, err := c.WriteBundles(context.Background(), sampleSet.Refs(host), files,
		WithCache(cache), WithBundleWritten(func(path string, images int) {
			if images != len(sampleSet.Refs(host)) {
				t.Errorf("%s: %d images", path, images)
			}
			written = append(written, path)
		}))
	if err != nil {
		t.Fatal(err)
	}
	if fetched == 0 || len(written) != 2 || written[0] != files[0].Path || written[1] != files[1].Path {
		t.Fatalf("fetched %d, written %q", fetched, written)
	}
	for i, want := range []bundle.Compression{bundle.Zstd, bundle.Gzip} {
		f, err := os.Open(files[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := bundle.ReadContents(context.Background(), f)
		f.Close()
		if err != nil || got.Compression != want || len(got.Index.Manifests) != len(sampleSet.Refs(host)) {
			t.Fatalf("%s: %+v, %v", files[i].Path, got, err)
		}
	}
	// Everything is cached now: a second run downloads nothing.
	again, err := c.WriteBundles(context.Background(), sampleSet.Refs(host), files[:1], WithCache(cache))
	if err != nil || again != 0 {
		t.Fatalf("cached run fetched %d bytes: %v", again, err)
	}
}

// Mistakes found only after a long download are refused before it.
func TestWriteBundlesChecksOutputsFirst(t *testing.T) {
	c := newClient(t)
	dir := t.TempDir()
	refs := []string{"localhost:1/unreachable:v1"}
	tgt := platform.Target{Platform: linuxAMD64}
	cases := map[string]struct {
		files []BundleFile
		opts  []PullOption
		want  error
	}{
		"no files":       {nil, nil, ErrInvalidArgument},
		"same path":      {[]BundleFile{{Path: filepath.Join(dir, "a.tar"), Target: tgt}, {Path: filepath.Join(dir, ".", "a.tar"), Target: tgt}}, nil, ErrInvalidArgument},
		"directory":      {[]BundleFile{{Path: dir, Target: tgt}}, []PullOption{WithCompression(bundle.Zstd)}, ErrInvalidArgument},
		"extension":      {[]BundleFile{{Path: filepath.Join(dir, "a.zip"), Target: tgt}}, nil, bundle.ErrUnknownCompression},
		"level for none": {[]BundleFile{{Path: filepath.Join(dir, "a.tar"), Target: tgt}}, []PullOption{WithLevel(3)}, bundle.ErrBadLevel},
		"gzip level 12":  {[]BundleFile{{Path: filepath.Join(dir, "a.tar.gz"), Target: tgt}}, []PullOption{WithLevel(12)}, bundle.ErrBadLevel},
		"unknown codec":  {[]BundleFile{{Path: filepath.Join(dir, "a.tar"), Target: tgt}}, []PullOption{WithCompression("lz4")}, bundle.ErrUnknownCompression},
		"nil cache":      {[]BundleFile{{Path: filepath.Join(dir, "a.tar"), Target: tgt}}, []PullOption{WithCache(nil)}, ErrInvalidArgument},
		// /proc refuses new files even to root, as a read-only mount would.
		"unwritable": {[]BundleFile{{Path: "/proc/ferry-test.tar", Target: tgt}}, nil, ErrInvalidArgument},
	}
	for what, tc := range cases {
		if _, err := c.WriteBundles(context.Background(), refs, tc.files, tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", what, err, tc.want)
		}
	}
}

// A failed run leaves no file and no temp file behind.
func TestWriteBundlesLeavesNothingOnFailure(t *testing.T) {
	host, c, _ := serveSample(t)
	cache, _ := NewCache(t.TempDir())
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	files := []BundleFile{
		{Path: filepath.Join(dir, "1809.tar.zst"), Target: windows(t, "1809")},
		{Path: filepath.Join(dir, "2025.tar.zst"), Target: windows(t, "2025")},
	}
	_, err := c.WriteBundles(ctx, sampleSet.Refs(host), files, WithCache(cache),
		WithBundleWritten(func(string, int) { cancel() }))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "1809.tar.zst" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("left %q; want only the bundle finished before the failure", names)
	}
}

// WithBundleResult reports the size and sha256 of the bytes that landed,
// and a BundleFile with a Writer streams there instead of a file.
func TestWriteBundlesResultAndStream(t *testing.T) {
	host, c, _ := serveSample(t)
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "1809.tar.zst")
	var stream bytes.Buffer
	files := []BundleFile{
		{Path: path, Target: windows(t, "1809")},
		{Path: "-", Target: windows(t, "2025"), Writer: &stream},
	}
	var results []BundleResult
	_, err = c.WriteBundles(context.Background(), sampleSet.Refs(host), files, WithCache(cache),
		WithCompression(bundle.Zstd), WithBundleResult(func(r BundleResult) { results = append(results, r) }))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range [][]byte{data, stream.Bytes()} {
		sum := sha256.Sum256(b)
		r := results[i]
		if r.Path != files[i].Path || r.Size != int64(len(b)) || r.SHA256 != hex.EncodeToString(sum[:]) || len(r.Images) != len(sampleSet.Refs(host)) {
			t.Errorf("result %d = %+v (size %d), want the bytes written", i, r, len(b))
		}
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("a file named - was written")
	}
	_, err = c.WriteBundles(context.Background(), sampleSet.Refs(host), files[1:], WithCache(cache))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("stream without compression: %v, want ErrInvalidArgument", err)
	}
}
