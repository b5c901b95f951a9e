package serve_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/registry/serve"
)

// benchBundle is a zstd bundle with a seek table in a temporary file: three
// images of layers that do not compress, as real (gzip) layers do not.
type benchBundle struct {
	path    string
	digests []v1.Hash
	bytes   int64
}

var (
	benchOnce sync.Once
	bench     benchBundle
	benchErr  error
)

func makeBenchBundle(dir string) (benchBundle, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	blobs := verifytest.Blobs{}
	var images []bundle.Image
	var bb benchBundle
	for i := range 3 {
		var layers []verifytest.Layer
		for _, size := range []int{60 << 20, 20 << 20, 5 << 20, 300 << 10} {
			data := make([]byte, size+i*4099)
			for k := 0; k+8 <= len(data); k += 8 {
				v := rng.Uint64()
				for j := range 8 {
					data[k+j] = byte(v >> (8 * j))
				}
			}
			layers = append(layers, verifytest.Layer{Blob: data, DiffID: verifytest.Hash(data), MediaType: types.DockerLayer})
			bb.digests = append(bb.digests, verifytest.Hash(data))
			bb.bytes += int64(len(data))
		}
		images = append(images, verifytest.Image(fmt.Sprintf("docker.io/ferry/bench-%d:1", i), "1", linux, layers, blobs))
	}
	bb.path = filepath.Join(dir, "bench.tar.zst")
	f, err := os.Create(bb.path)
	if err != nil {
		return bb, err
	}
	defer f.Close()
	if err := bundle.Write(context.Background(), f, images, blobs, bundle.WithCompression(bundle.Zstd, 0)); err != nil {
		return bb, err
	}
	return bb, f.Close()
}

// BenchmarkServe pulls every layer of the bundle in full from a fresh
// server, by 1 and by 8 clients at once, as `crane pull`s of all images
// do: each blob's first reads are the ones that check its digest.
func BenchmarkServe(b *testing.B) {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-serve-bench")
		if err != nil {
			benchErr = err
			return
		}
		bench, benchErr = makeBenchBundle(dir)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	b.Cleanup(func() { os.RemoveAll(filepath.Dir(bench.path)) })
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("pulls=%d", clients), func(b *testing.B) {
			a, err := bundle.OpenPath(context.Background(), bench.path)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			b.SetBytes(bench.bytes * int64(clients))
			b.ReportAllocs()
			for range b.N {
				pullAll(b, a, clients)
			}
		})
	}
}

func pullAll(b *testing.B, a *bundle.Archive, clients int) {
	b.StopTimer()
	cat, err := catalog.New([]*bundle.Archive{a})
	if err != nil {
		b.Fatal(err)
	}
	h, err := serve.New(cat)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b.StartTimer()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The same order for all, as pulls started together ask.
			for _, d := range bench.digests {
				if err := pull(srv.URL, d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func pull(srv string, d v1.Hash) error {
	resp, err := http.Get(srv + "/v2/ferry/bench-0/blobs/" + d.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: status %d", d, resp.StatusCode)
	}
	if err != nil {
		return fmt.Errorf("%s after %d bytes: %w", d, n, err)
	}
	return nil
}
