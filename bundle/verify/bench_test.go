package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// benchImages are 8 images of 3 layers, each layer 12 MiB of tar (half
// random, half words) gzipped to ~6 MiB, like real layers in size.
var benchImages = sync.OnceValues(func() ([]bundle.Image, verifytest.Blobs) {
	blobs := verifytest.Blobs{}
	var images []bundle.Image
	seed := int64(100)
	for i := 0; i < 8; i++ {
		var layers []verifytest.Layer
		for j := 0; j < 3; j++ {
			seed++
			layers = append(layers, fastGzipLayer(verifytest.TarLayer(seed, 12<<20)))
		}
		name := fmt.Sprintf("docker.io/rancher/bench-%d:v1", i)
		images = append(images, verifytest.Image(name, "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, layers, blobs))
	}
	return images, blobs
})

// benchBundle is the ~150 MB bundle of benchImages as a plain tar.
var benchBundle = sync.OnceValues(func() ([]byte, error) {
	images, blobs := benchImages()
	var buf bytes.Buffer
	err := bundle.Write(context.Background(), &buf, images, blobs)
	return buf.Bytes(), err
})

// benchFerryZstd is the same bundle as ferry writes it: zstd with a seek
// table, each layer in frames of its own.
var benchFerryZstd = sync.OnceValues(func() ([]byte, error) {
	images, blobs := benchImages()
	var buf bytes.Buffer
	err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithCompression(bundle.Zstd, 0))
	return buf.Bytes(), err
})

func fastGzipLayer(tarBytes []byte) verifytest.Layer {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(tarBytes)
	_ = zw.Close()
	return verifytest.Layer{Blob: buf.Bytes(), DiffID: verifytest.Hash(tarBytes), MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"}
}

var benchZstd = sync.OnceValue(func() []byte {
	b, err := benchBundle()
	if err != nil {
		panic(err)
	}
	return verifytest.Zstd(b)
})

// BenchmarkVerify reports MB/s of bundle bytes (as stored, layers gzipped).
func BenchmarkVerify(b *testing.B) {
	plain, err := benchBundle()
	if err != nil {
		b.Fatal(err)
	}
	if dir := os.Getenv("FERRY_BENCH_DIR"); dir != "" {
		// For comparing with `zstd -dc | sha256sum` and friends.
		_ = os.WriteFile(dir+"/bench.tar", plain, 0o644)
		_ = os.WriteFile(dir+"/bench.tar.zst", benchZstd(), 0o644)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"tar", plain}, {"zstd", benchZstd()}} {
		for _, jobs := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/jobs=%d", tc.name, jobs), func(b *testing.B) {
				b.SetBytes(int64(len(tc.data)))
				for b.Loop() {
					rep, err := verify.Archive(context.Background(), bytes.NewReader(tc.data), verify.WithJobs(jobs))
					if err != nil || !rep.OK() {
						b.Fatalf("%v %+v", err, rep.Problems())
					}
				}
			})
		}
	}
}

// bigLayersBundle is ~90 MB: one image of 96, 48 and 16 MiB layers, the
// shape where one large layer inflating alone used to hold the rest up.
var bigLayersBundle = sync.OnceValues(func() ([]byte, error) {
	blobs := verifytest.Blobs{}
	var layers []verifytest.Layer
	for i, size := range []int{96 << 20, 48 << 20, 16 << 20} {
		layers = append(layers, fastGzipLayer(verifytest.TarLayer(int64(300+i), size)))
	}
	img := verifytest.Image("docker.io/rancher/big:v1", "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, layers, blobs)
	var buf bytes.Buffer
	err := bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs)
	return buf.Bytes(), err
})

// BenchmarkVerifyBigLayers reports MB/s of bundle bytes at the default
// jobs: the large layer must not keep the others from inflating meanwhile.
func BenchmarkVerifyBigLayers(b *testing.B) {
	plain, err := bigLayersBundle()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"tar", plain}, {"zstd", verifytest.Zstd(plain)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			for b.Loop() {
				rep, err := verify.Archive(context.Background(), bytes.NewReader(tc.data))
				if err != nil || !rep.OK() {
					b.Fatalf("%v %+v", err, rep.Problems())
				}
			}
		})
	}
}

// BenchmarkVerifyModes reports MB/s of a ferry .tar.zst for each mode, read
// as a file (by offset) and as a pipe (one stream), and for the reference
// that `zstd -dc | sha256sum` stands for: decompressing the stream and
// hashing it, in one goroutine.
func BenchmarkVerifyModes(b *testing.B) {
	data, err := benchFerryZstd()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		for _, how := range []string{"file", "pipe"} {
			b.Run(fmt.Sprintf("%s/%s", mode, how), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var r io.Reader = bytes.NewReader(data)
					if how == "pipe" {
						r = io.MultiReader(r) // neither io.ReaderAt nor io.Seeker
					}
					rep, err := verify.Archive(context.Background(), r, verify.WithMode(mode))
					if err != nil || !rep.OK() || rep.Mode != mode {
						b.Fatalf("%v %+v", err, rep.Problems())
					}
				}
			})
		}
	}
	b.Run("reference/zstd-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			rc, _, err := bundle.Decompress(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
}
