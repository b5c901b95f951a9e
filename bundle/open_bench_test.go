package bundle_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// benchBundle writes a zstd bundle of images×layers gzip layers of size
// bytes each (half random, like real layers) and returns its path.
func benchBundle(b *testing.B, images, layers, size int) (string, []bundle.Image) {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	blobs := newMemBlobs()
	var imgs []bundle.Image
	for i := 0; i < images; i++ {
		img := empty.Image
		for j := 0; j < layers; j++ {
			data := make([]byte, size)
			for k := range data {
				if (k>>12)&1 == 0 {
					data[k] = byte(rng.Uint32())
				}
			}
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
			zw.Write(data)
			zw.Close()
			var err error
			if img, err = mutate.AppendLayers(img, static.NewLayer(gz.Bytes(), types.DockerLayer)); err != nil {
				b.Fatal(err)
			}
		}
		ref := fmt.Sprintf("docker.io/ferry/bench-%d:1", i)
		imgs = append(imgs, verifytest.ImageOf(b, blobs.data, img, ref))
	}
	path := writeZstdBundle(b, "bench.tar.zst", imgs, blobs)
	return path, imgs
}

// readLayers reads every layer of img as stored and returns the bytes read.
func readLayers(b *testing.B, img v1.Image) int64 {
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			b.Fatal(err)
		}
		k, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		n += k
	}
	return n
}

// BenchmarkReadOneImage reads one image's layers out of a multi-image zstd
// bundle through bundle.Open and through go-containerregistry's
// tarball.Image over a 32 MiB-window zstd reader (the k3s path), and reports
// the bytes each decompressed per byte of layer returned.
func BenchmarkReadOneImage(b *testing.B) {
	path, imgs := benchBundle(b, 6, 2, 8<<20)
	ref, _ := name.NewTag(imgs[3].Name)
	st, _ := os.Stat(path)
	b.Run("open", func(b *testing.B) {
		var inflated, read int64
		for i := 0; i < b.N; i++ {
			a, err := bundle.OpenPath(context.Background(), path)
			if err != nil {
				b.Fatal(err)
			}
			img, err := a.Image(ref)
			if err != nil {
				b.Fatal(err)
			}
			read = readLayers(b, img)
			inflated = a.Inflated()
			a.Close()
		}
		b.SetBytes(read)
		b.ReportMetric(float64(inflated)/float64(read), "inflated/layer")
	})
	b.Run("tarball", func(b *testing.B) {
		var inflated, read int64
		for i := 0; i < b.N; i++ {
			inflated = 0
			opener := func() (io.ReadCloser, error) { return k3sOpen(path, &inflated) }
			img, err := tarball.Image(opener, &ref)
			if err != nil {
				b.Fatal(err)
			}
			read = readLayers(b, img)
		}
		b.SetBytes(read)
		b.ReportMetric(float64(inflated)/float64(read), "inflated/layer")
	})
	f, _ := os.Open(path)
	defer f.Close()
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	sr, err := seekable.NewReader(f, dec)
	if err != nil {
		b.Fatal(err)
	}
	table, _ := sr.SeekTable()
	b.Logf("bundle %d bytes, seek table %d frames, %d bytes: %.4f%%", st.Size(), table.NumFrames(), 17+12*table.NumFrames(), 100*float64(17+12*table.NumFrames())/float64(st.Size()))
}

// k3sOpen opens a bundle the way k3s does: klauspost zstd, 32 MiB window.
func k3sOpen(path string, inflated *int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, err := zstd.NewReader(f, zstd.WithDecoderMaxMemory(1<<25))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &countingZstd{zr: zr, f: f, n: inflated}, nil
}

type countingZstd struct {
	zr *zstd.Decoder
	f  *os.File
	n  *int64
}

func (c *countingZstd) Read(p []byte) (int, error) {
	n, err := c.zr.Read(p)
	*c.n += int64(n)
	return n, err
}

func (c *countingZstd) Close() error { c.zr.Close(); return c.f.Close() }

// writeZstdBundle writes imgs as a default-level zstd bundle in a temp dir,
// for the benchmarks that read one back.
func writeZstdBundle(b *testing.B, name string, imgs []bundle.Image, blobs *memBlobs) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := bundle.Write(context.Background(), f, imgs, blobs, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}
