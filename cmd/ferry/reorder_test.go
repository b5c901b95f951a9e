package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	mrand "math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder"
)

// reorderFixture is a crane-style tarball (manifest.json last) of one
// random image, and the image.
func reorderFixture(t *testing.T) ([]byte, v1.Image, name.Tag) {
	t.Helper()
	img, err := random.Image(256<<10, 3, random.WithSource(mrand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("example.com/app:1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), img, tag
}

func compressBytes(t *testing.T, c bundle.Compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	cw, err := bundle.NewCompressor(&buf, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func runReorderCmd(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	root := NewRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(append([]string{"reorder"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// tarOf decompresses a file and returns its tar stream and compression.
func tarOf(t *testing.T, path string) ([]byte, bundle.Compression) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, c, err := bundle.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

type tarMember struct {
	hdr  tar.Header
	body []byte
}

func tarMembers(t *testing.T, b []byte) []tarMember {
	t.Helper()
	var out []tarMember
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("not a tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarMember{*h, body})
	}
}

// checkMetadataFirst asserts the entries are the input's, ranked by
// bundle.HeaderRank with metadata first, and returns the metadata names.
func checkMetadataFirst(t *testing.T, in, out []byte) []string {
	t.Helper()
	want := map[string][]byte{}
	for _, m := range tarMembers(t, in) {
		want[m.hdr.Name] = m.body
	}
	var meta []string
	last := -1
	members := tarMembers(t, out)
	for _, m := range members {
		r := bundle.HeaderRank(&m.hdr, m.body[:min(len(m.body), 512)])
		if r < last {
			t.Fatalf("%q (rank %d) after rank %d", m.hdr.Name, r, last)
		}
		last = r
		if r < reorder.Bulk {
			meta = append(meta, m.hdr.Name)
		}
		if body, ok := want[m.hdr.Name]; !ok || !bytes.Equal(body, m.body) {
			t.Fatalf("entry %q missing from the input or changed", m.hdr.Name)
		}
	}
	if len(members) != len(want) || len(meta) == 0 || meta[0] != "manifest.json" {
		t.Fatalf("%d entries of %d, metadata %q", len(members), len(want), meta)
	}
	return meta
}

// zstdFrameLen is the length of the zstd frame at the start of b, read from
// the frame and block headers (RFC 8878 section 3.1.1).
func zstdFrameLen(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 6 || !bytes.Equal(b[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatal("not a zstd frame")
	}
	fhd := b[4]
	single := fhd&0x20 != 0
	pos := 5 + []int{0, 1, 2, 4}[fhd&3]
	if !single {
		pos++ // window descriptor
	}
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		fcs = 1
	}
	pos += fcs
	for {
		if pos+3 > len(b) {
			t.Fatal("zstd frame runs off the end")
		}
		bh := int(b[pos]) | int(b[pos+1])<<8 | int(b[pos+2])<<16
		pos += 3
		switch size := bh >> 3; (bh >> 1) & 3 {
		case 0, 2:
			pos += size
		case 1:
			pos++
		default:
			t.Fatal("reserved zstd block type")
		}
		if bh&1 == 1 {
			break
		}
	}
	if fhd&0x04 != 0 {
		pos += 4 // content checksum
	}
	return pos
}

// reorder treats every rank at or above Bulk as "not metadata": bundle's
// metadata ranks must be below it, and a layer must rank Bulk.
func TestReorderRankContract(t *testing.T) {
	if got := bundle.MetadataRank("0123abcd/layer.tar", 10<<20, nil); bundle.RankSmall >= reorder.Bulk || got != reorder.Bulk {
		t.Fatalf("RankSmall %d, a layer ranks %d, reorder.Bulk %d", bundle.RankSmall, got, reorder.Bulk)
	}
}

func TestReorderCmdConvert(t *testing.T) {
	tarBytes, img, tag := reorderFixture(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tar.gz")
	if err := os.WriteFile(in, compressBytes(t, bundle.Gzip, tarBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar.zst")
	msg, err := runReorderCmd(t, nil, in, "-o", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "metadata") {
		t.Errorf("output %q", msg)
	}
	outTar, c := tarOf(t, out)
	if c != bundle.Zstd {
		t.Fatalf("output compression %s, want zstd", c)
	}
	meta := checkMetadataFirst(t, tarBytes, outTar)

	// The first zstd frame alone decodes to exactly the metadata entries.
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	n := zstdFrameLen(t, raw)
	if n >= len(raw) {
		t.Fatalf("one frame for the whole file")
	}
	rc, _, err := bundle.Decompress(bytes.NewReader(raw[:n]))
	if err != nil {
		t.Fatal(err)
	}
	first, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("first frame alone: %v", err)
	}
	var firstNames []string
	for _, m := range tarMembers(t, first) {
		firstNames = append(firstNames, m.hdr.Name)
	}
	if strings.Join(firstNames, ",") != strings.Join(meta, ",") {
		t.Fatalf("first frame holds %q, want %q", firstNames, meta)
	}

	// ggcr loads the reordered bundle as the same image.
	got, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(outTar)), nil }, &tag)
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	wd, _ := img.Digest()
	if gd != wd {
		t.Fatalf("digest %s, want %s", gd, wd)
	}
}

func TestReorderCmdInPlace(t *testing.T) {
	tarBytes, _, _ := reorderFixture(t)
	for _, c := range []bundle.Compression{bundle.None, bundle.Gzip, bundle.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			dir := t.TempDir()
			// A misleading name: the content decides the compression.
			path := filepath.Join(dir, "images.bundle")
			if err := os.WriteFile(path, compressBytes(t, c, tarBytes), 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := runReorderCmd(t, nil, path); err != nil {
				t.Fatalf("%v\n%s", err, msg)
			}
			outTar, got := tarOf(t, path)
			if got != c {
				t.Fatalf("compression %s, want the input's %s", got, c)
			}
			checkMetadataFirst(t, tarBytes, outTar)
			first, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Idempotent: a second run rewrites identical bytes.
			msg, err := runReorderCmd(t, nil, path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(msg, "already") {
				t.Errorf("second run says %q", msg)
			}
			second, _ := os.ReadFile(path)
			if !bytes.Equal(first, second) {
				t.Fatalf("second run changed the file")
			}
			assertOnlyFiles(t, dir, "images.bundle")
		})
	}
}

func TestReorderCmdStdin(t *testing.T) {
	tarBytes, _, _ := reorderFixture(t)
	out := filepath.Join(t.TempDir(), "out.tar")
	if msg, err := runReorderCmd(t, bytes.NewReader(compressBytes(t, bundle.Zstd, tarBytes)), "-", "-o", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	outTar, c := tarOf(t, out)
	if c != bundle.None {
		t.Fatalf("compression %s, want none from .tar", c)
	}
	checkMetadataFirst(t, tarBytes, outTar)
	if _, err := runReorderCmd(t, bytes.NewReader(nil), "-"); err == nil {
		t.Fatal("stdin without -o accepted")
	}
}

// On any error there is no output file and an in-place input is untouched.
func TestReorderCmdErrors(t *testing.T) {
	tarBytes, _, _ := reorderFixture(t)
	good := compressBytes(t, bundle.Zstd, tarBytes)
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.Close()
	tests := []struct {
		name  string
		input []byte
		args  []string // after the input path; none means in place
		want  string
	}{
		{"truncated in place", good[:len(good)/2], nil, "truncated"},
		{"truncated to -o", good[:len(good)/2], []string{"-o", "out.tar.zst"}, "truncated"},
		{"unsafe path", compressBytes(t, bundle.Gzip, evil.Bytes()), []string{"-o", "out.tar.gz"}, "unsafe path"},
		{"flag contradicts name", good, []string{"-o", "out.tar.zst", "--compression", "gzip"}, "does not match"},
		{"unknown extension", good, []string{"-o", "out.bin"}, "unknown compression"},
		{"bad level", good, []string{"-o", "out.tar.gz", "--level", "42"}, "level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.tar.zst")
			if err := os.WriteFile(in, tt.input, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{in}
			for _, a := range tt.args {
				if strings.HasPrefix(a, "out.") {
					a = filepath.Join(dir, a)
				}
				args = append(args, a)
			}
			_, err := runReorderCmd(t, nil, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			after, _ := os.ReadFile(in)
			if !bytes.Equal(after, tt.input) {
				t.Fatal("input changed")
			}
			assertOnlyFiles(t, dir, "in.tar.zst")
		})
	}
	if code := run(context.Background(), []string{"reorder", filepath.Join(t.TempDir(), "missing.tar")}); code != 2 {
		t.Errorf("missing input: exit %d, want 2", code)
	}
}

// --compression none writes a plain tar whatever -o is called.
func TestReorderCmdCompressionFlag(t *testing.T) {
	tarBytes, _, _ := reorderFixture(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tar")
	if err := os.WriteFile(in, tarBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.bin")
	if _, err := runReorderCmd(t, nil, in, "-o", out, "--compression", "none"); err != nil {
		t.Fatal(err)
	}
	outTar, c := tarOf(t, out)
	if c != bundle.None {
		t.Fatalf("compression %s", c)
	}
	checkMetadataFirst(t, tarBytes, outTar)
}

func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %q, want %q (temp or spill files left behind?)", dir, got, names)
	}
}
