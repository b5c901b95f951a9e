package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// gzipLayerImage is an image with one gzip layer of n bytes of data that is
// half random, half repetitive, like real layers: gzip'd, it barely
// compresses further, which is what choosing a default level depends on.
func gzipLayerImage(b testing.TB, blobs *memBlobs, n int) bundle.Image {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, n)
	for i := range data {
		if (i>>12)&1 == 0 {
			data[i] = byte(rng.Uint32())
		} else {
			data[i] = "ferry bench "[i%12]
		}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(data)
	zw.Close()
	layer := static.NewLayer(gz.Bytes(), types.DockerLayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		b.Fatal(err)
	}
	return verifytest.ImageOf(b, blobs.data, img, "docker.io/ferry/bench:1")
}

// BenchmarkWrite measures the write path (tar, verify, compress) per level;
// -benchmem and the reported ratio show what a level buys on gzip layers.
func BenchmarkWrite(b *testing.B) {
	blobs := newMemBlobs()
	img := gzipLayerImage(b, blobs, 64<<20)
	m, _ := img.Parsed()
	size := m.Layers[0].Size
	for _, tc := range []struct {
		name  string
		c     bundle.Compression
		level int
	}{{"none", bundle.None, 0}, {"zstd-1", bundle.Zstd, 1}, {"zstd-3", bundle.Zstd, 3}, {"zstd-9", bundle.Zstd, 9}, {"gzip-6", bundle.Gzip, 6}} {
		b.Run(tc.name, func(b *testing.B) {
			var out countWriter
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				out = 0
				if err := bundle.Write(context.Background(), &out, []bundle.Image{img}, blobs, bundle.WithCompression(tc.c, tc.level)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(size), "out/in")
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// goTreeLayer is an uncompressed layer, as docker save writes them, of up
// to n bytes of real files: the Go toolchain's binaries, then its sources.
func goTreeLayer(b *testing.B, n int64) []byte {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skipf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(goroot))
	var files []string
	for _, dir := range []string{"bin", "pkg/tool", "src"} {
		filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil || int64(buf.Len()+len(data)) > n {
			continue
		}
		rel, _ := filepath.Rel(root, path)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	if buf.Len() < int(n/2) {
		b.Skipf("GOROOT %s: only %d bytes of files readable", root, buf.Len())
	}
	return buf.Bytes()
}

// BenchmarkWriteUncompressedLayer is BenchmarkWrite on a layer of real,
// uncompressed files: what compression by content (level 0) buys over one
// level for everything.
func BenchmarkWriteUncompressedLayer(b *testing.B) {
	blobs := newMemBlobs()
	data := goTreeLayer(b, 64<<20)
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.DockerUncompressedLayer))
	if err != nil {
		b.Fatal(err)
	}
	bimg := verifytest.ImageOf(b, blobs.data, img, "docker.io/ferry/go:1")
	for _, level := range []int{0, 1, 3, 19} {
		b.Run(fmt.Sprintf("zstd-%d", level), func(b *testing.B) {
			var out countWriter
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				out = 0
				if err := bundle.Write(context.Background(), &out, []bundle.Image{bimg}, blobs, bundle.WithCompression(bundle.Zstd, level)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(len(data)), "out/in")
		})
	}
}
