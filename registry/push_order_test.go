package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// A gzip bundle decompresses only forward: pushing it reads its blobs in
// archive order, so the push costs about one more pass over the tar, not
// one per layer. A zstd bundle with a seek table reads what it sends.
func TestPushReadsStreamedArchiveOnce(t *testing.T) {
	blobs := verifytest.Blobs{}
	shared := verifytest.GzipLayer(verifytest.TarLayer(100, 96<<10))
	var images []bundle.Image
	for i := range 4 {
		layers := []verifytest.Layer{shared}
		for k := range 3 {
			layers = append(layers, verifytest.GzipLayer(verifytest.TarLayer(int64(10*i+k), 96<<10)))
		}
		n := fmt.Sprintf("docker.io/rancher/app%d:v1", i)
		images = append(images, verifytest.Image(n, "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, layers, blobs))
	}
	for _, c := range []bundle.Compression{bundle.Gzip, bundle.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var buf bytes.Buffer
			if err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithCompression(c, 0)); err != nil {
				t.Fatal(err)
			}
			tarSize := inflatedSize(t, buf.Bytes())
			a, err := bundle.Open(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			cat, err := catalog.New([]*bundle.Archive{a})
			if err != nil {
				t.Fatal(err)
			}
			opened := a.Inflated()
			m := newMFRegistry(t)
			m.client = newClient(t, WithInsecureRegistries(m.host), WithJobs(4))
			rep := m.pushCatalog(t, cat, m.host)
			spent := a.Inflated() - opened
			t.Logf("%s: tar %d bytes; open and catalog inflated %d, push %d; sent %d bytes in %d blobs, mounted %d",
				c, tarSize, opened, spent, rep.BytesUploaded, rep.BlobsUploaded, rep.BlobsMounted)
			if rep.BlobsUploaded != 4*4+1 || rep.BlobsMounted != 3 {
				t.Fatalf("uploaded %d, mounted %d blobs; want 17 (a config and three layers per image, the shared layer once) and 3", rep.BlobsUploaded, rep.BlobsMounted)
			}
			if limit := tarSize * 13 / 10; spent > limit {
				t.Errorf("push inflated %d bytes, over %d (1.3 × the %d-byte tar)", spent, limit, tarSize)
			}
			if c == bundle.Zstd && spent > rep.BytesUploaded*12/10+(1<<20) {
				t.Errorf("seekable bundle: push inflated %d bytes to send %d", spent, rep.BytesUploaded)
			}
			for _, img := range images {
				if got, _ := m.digest(t, img.Name[len("docker.io/"):]); got != img.Descriptor.Digest {
					t.Errorf("%s is %s, want %s", img.Name, got, img.Descriptor.Digest)
				}
			}
		})
	}
}

// inflatedSize is the size of the tar inside a gzip or zstd archive.
func inflatedSize(t *testing.T, archive []byte) int64 {
	t.Helper()
	rc, _, err := bundle.Decompress(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
