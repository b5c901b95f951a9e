package reorder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
)

// testRank mirrors bundle.HeaderRank closely enough for these tests; reorder
// must not depend on bundle, and the real wiring is tested in cmd/ferry.
func testRank(h *tar.Header, head []byte) int {
	switch path.Clean(strings.TrimPrefix(h.Name, "./")) {
	case "oci-layout":
		return 0
	case "index.json":
		return 1
	case "manifest.json":
		return 2
	case "repositories":
		return 3
	}
	switch {
	case h.Typeflag == tar.TypeDir:
		return 4
	case h.Typeflag != tar.TypeReg || h.Size > 4<<20:
		return Bulk
	case path.Base(h.Name) == "json" || path.Base(h.Name) == "VERSION":
		return 4
	}
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) > 0 && (head[0] == '{' || head[0] == '[') && bytes.IndexByte(head, 0) < 0 {
		return 4
	}
	return Bulk
}

// file is a tar entry to build a fixture from.
type file struct {
	hdr  tar.Header
	body []byte
}

func reg(name string, body []byte) file {
	return file{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)),
		ModTime: time.Unix(1700000000, 0), Uid: 0, Gid: 0}, body: body}
}

func dir(name string) file {
	return file{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}}
}

func symlink(name, target string) file {
	return file{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: time.Unix(1700000000, 0)}}
}

func buildTar(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("header %q: %v", h.Name, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatalf("body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// dockerLegacy is what docker save wrote before 25: per-layer directories,
// the config at the top, manifest.json and repositories last, and a layer
// shared between images stored once and symlinked.
func dockerLegacy(t testing.TB, layerSize int) []byte {
	l1, l2 := randomBytes(1, layerSize), randomBytes(2, layerSize/2+100)
	id1, id2, id3 := digestOf([]byte("1")), digestOf([]byte("2")), digestOf([]byte("3"))
	cfg := mustJSON(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers"}})
	cfgName := digestOf(cfg) + ".json"
	manifest := mustJSON([]map[string]any{{"Config": cfgName, "RepoTags": []string{"busybox:latest"},
		"Layers": []string{id1 + "/layer.tar", id2 + "/layer.tar", id3 + "/layer.tar"}}})
	var files []file
	for i, l := range []struct {
		id   string
		body []byte
	}{{id1, l1}, {id2, l2}} {
		files = append(files, dir(l.id+"/"), reg(l.id+"/VERSION", []byte("1.0")),
			reg(l.id+"/json", mustJSON(map[string]any{"id": l.id, "n": i})), reg(l.id+"/layer.tar", l.body))
	}
	files = append(files, dir(id3+"/"), reg(id3+"/VERSION", []byte("1.0")),
		reg(id3+"/json", mustJSON(map[string]any{"id": id3})), symlink(id3+"/layer.tar", "../"+id1+"/layer.tar"),
		reg(cfgName, cfg), reg("manifest.json", manifest),
		reg("repositories", mustJSON(map[string]any{"busybox": map[string]string{"latest": id2}})))
	return buildTar(t, files...)
}

// docker25 is docker save from 25 on: an OCI layout plus manifest.json, in
// the lexical order of a directory walk, with PAX and GNU headers mixed in
// to prove headers survive byte for byte.
func docker25(t testing.TB, layerSize int) []byte {
	layer := randomBytes(3, layerSize)
	cfg := mustJSON(map[string]any{"architecture": "arm64", "os": "linux"})
	man := mustJSON(map[string]any{"schemaVersion": 2, "config": map[string]any{"digest": "sha256:" + digestOf(cfg)},
		"layers": []map[string]any{{"digest": "sha256:" + digestOf(layer)}}})
	idx := mustJSON(map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{"digest": "sha256:" + digestOf(man)}}})
	blobs := map[string][]byte{digestOf(cfg): cfg, digestOf(layer): layer, digestOf(man): man}
	files := []file{dir("blobs/"), dir("blobs/sha256/")}
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for k := range blobs {
			if !yield(k) {
				return
			}
		}
	}) {
		f := reg("blobs/sha256/"+d, blobs[d])
		if len(blobs[d]) == layerSize {
			f.hdr.Format = tar.FormatPAX
			f.hdr.PAXRecords = map[string]string{"LIBARCHIVE.creationtime": "1700000000"}
			f.hdr.Uname, f.hdr.Gname = "root", "root"
		}
		files = append(files, f)
	}
	long := reg("notes/"+strings.Repeat("long-name-", 12)+".txt", []byte("GNU long name\n"))
	long.hdr.Format = tar.FormatGNU
	files = append(files, long,
		reg("index.json", idx),
		reg("manifest.json", mustJSON([]map[string]any{{"Config": "blobs/sha256/" + digestOf(cfg),
			"RepoTags": []string{"alpine:3"}, "Layers": []string{"blobs/sha256/" + digestOf(layer)}}})),
		reg("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		reg("repositories", mustJSON(map[string]any{"alpine": map[string]string{"3": digestOf(man)}})))
	return buildTar(t, files...)
}

// ggcrImages are random images written by crane's tarball.MultiRefWrite:
// "sha256:<hex>" configs, "<hex>.tar.gz" layers, manifest.json last.
func ggcrImages(t testing.TB, layerSize int64) (map[name.Reference]v1.Image, []byte) {
	t.Helper()
	imgs := map[name.Reference]v1.Image{}
	for i, ref := range []string{"example.com/a:1", "example.com/b:2"} {
		img, err := random.Image(layerSize, int64(2+i), random.WithSource(mrand.NewSource(int64(i)+7)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		imgs[r] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(imgs, &buf); err != nil {
		t.Fatal(err)
	}
	return imgs, buf.Bytes()
}

// ociArchive is an OCI layout written by ggcr's layout package, tarred in
// lexical walk order (blobs first, oci-layout last) like `tar -C dir .`.
func ociArchive(t testing.TB, layerSize int64) []byte {
	t.Helper()
	root := t.TempDir()
	p, err := layout.Write(root, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(layerSize, 2, random.WithSource(mrand.NewSource(99)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	var files []file
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = "./" + filepath.ToSlash(rel)
		if d.IsDir() {
			files = append(files, dir(rel+"/"))
			return nil
		}
		b, err := os.ReadFile(p)
		files = append(files, reg(rel, b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return buildTar(t, files...)
}

// fixtures are the input layouts every behaviour test runs against.
func fixtures(t testing.TB) map[string][]byte {
	_, ggcr := ggcrImages(t, 300<<10)
	return map[string][]byte{
		"docker-legacy": dockerLegacy(t, 700<<10),
		"docker-25":     docker25(t, 900<<10),
		"ggcr-tarball":  ggcr,
		"oci-archive":   ociArchive(t, 200<<10),
	}
}

var compressions = []string{"none", "gzip", "zstd"}

func compress(t testing.TB, kind string, tarBytes []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newFrameWriter(t, &buf, kind)
	if _, err := w.Write(tarBytes); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decompress detects the codec from magic bytes, as bundle.Decompress does.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<25))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	}
	return io.NopCloser(br), nil
}

// frameWriter is a minimal bundle.Compressor: it can end a frame, and
// remembers where the first one ended.
type frameWriter struct {
	dst        *countWriter
	zw         *zstd.Encoder
	gw         *gzip.Writer
	firstFrame int64
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newFrameWriter(t testing.TB, w io.Writer, kind string) *frameWriter {
	fw := &frameWriter{dst: &countWriter{w: w}, firstFrame: -1}
	var err error
	switch kind {
	case "gzip":
		fw.gw, err = gzip.NewWriterLevel(fw.dst, gzip.BestSpeed)
	case "zstd":
		fw.zw, err = zstd.NewWriter(fw.dst, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true))
	case "none":
	default:
		err = fmt.Errorf("unknown compression %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func (f *frameWriter) Write(p []byte) (int, error) {
	switch {
	case f.zw != nil:
		return f.zw.Write(p)
	case f.gw != nil:
		return f.gw.Write(p)
	}
	return f.dst.Write(p)
}

func (f *frameWriter) EndFrame() error {
	switch {
	case f.zw != nil:
		if err := f.zw.Close(); err != nil {
			return err
		}
		f.zw.Reset(f.dst)
	case f.gw != nil:
		if err := f.gw.Close(); err != nil {
			return err
		}
		f.gw.Reset(f.dst)
	}
	if f.firstFrame < 0 {
		f.firstFrame = f.dst.n
	}
	return nil
}

func (f *frameWriter) Close() error {
	switch {
	case f.zw != nil:
		return f.zw.Close()
	case f.gw != nil:
		return f.gw.Close()
	}
	return nil
}

// entry is a parsed tar member for comparisons.
type entry struct {
	hdr  tar.Header
	body []byte
}

// readTar parses a whole tar stream, failing the test on any error.
func readTar(t testing.TB, b []byte) []entry {
	t.Helper()
	es, err := parseTar(b)
	if err != nil {
		t.Fatalf("output is not a valid tar: %v", err)
	}
	return es
}

func parseTar(b []byte) ([]entry, error) {
	var es []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es, nil
		}
		if err != nil {
			return es, err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return es, err
		}
		es = append(es, entry{hdr: *h, body: body})
	}
}
