package serve_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"strconv"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func blobURL(srv string, d v1.Hash) string {
	return srv + "/v2/rancher/rke2-runtime/blobs/" + d.String()
}

func TestBlobRanges(t *testing.T) {
	for _, c := range []bundle.Compression{bundle.Zstd, bundle.None, bundle.Gzip} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			blobs := verifytest.Blobs{}
			img := image(runtimeName, linux, 1, 300<<10, blobs)
			srv := server(t, openArchive(t, write(t, []bundle.Image{img}, blobs, c)))
			m, _ := img.Parsed()
			d := m.Layers[0].Digest
			want := blobs[d]
			size := strconv.Itoa(len(want))

			h := do(t, "HEAD", blobURL(srv.URL, d))
			if h.status != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != size || h.header.Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("HEAD: %d %v", h.status, h.header)
			}
			// A range first: the blob is checked whole before any of it is served.
			for _, tc := range []struct {
				rng      string
				from, to int // inclusive
			}{
				{"bytes=100-199", 100, 199},
				{"bytes=0-0", 0, 0},
				{fmt.Sprintf("bytes=%d-", len(want)-10), len(want) - 10, len(want) - 1},
				{"bytes=-5", len(want) - 5, len(want) - 1},
				{fmt.Sprintf("bytes=10-%d", len(want)+100), 10, len(want) - 1},
			} {
				r := do(t, "GET", blobURL(srv.URL, d), "Range", tc.rng)
				cr := fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, len(want))
				if r.status != http.StatusPartialContent || r.header.Get("Content-Range") != cr || !bytes.Equal(r.body, want[tc.from:tc.to+1]) {
					t.Errorf("%s: %d %q (%d bytes), want %s", tc.rng, r.status, r.header.Get("Content-Range"), len(r.body), cr)
				}
			}
			r := do(t, "GET", blobURL(srv.URL, d), "Range", fmt.Sprintf("bytes=%d-", len(want)))
			if r.status != http.StatusRequestedRangeNotSatisfiable || r.header.Get("Content-Range") != "bytes */"+size {
				t.Errorf("range past the end: %d %v", r.status, r.header)
			}
			r = do(t, "GET", blobURL(srv.URL, d))
			if r.status != 200 || r.err != nil || !bytes.Equal(r.body, want) || r.header.Get("Content-Length") != size {
				t.Fatalf("full GET: %d %v, %d bytes", r.status, r.err, len(r.body))
			}
		})
	}
}

// corrupt writes a plain tar bundle of img and flips a byte in the middle
// of each blob of damage (as a bad disk would), keeping tar structure.
func corrupt(t *testing.T, img bundle.Image, blobs verifytest.Blobs, damage ...v1.Hash) []byte {
	t.Helper()
	out := write(t, []bundle.Image{img}, blobs, bundle.None)
	for _, d := range damage {
		at := bytes.Index(out, blobs[d])
		if at < 0 {
			t.Fatalf("blob %s not found in the tar", d)
		}
		out[at+len(blobs[d])/2] ^= 1
	}
	return out
}

func TestDamagedBlobIsNeverServedAsGood(t *testing.T) {
	blobs := verifytest.Blobs{}
	img := image(runtimeName, linux, 1, 300<<10, blobs)
	m, _ := img.Parsed()
	big, small := m.Layers[0].Digest, m.Layers[1].Digest
	if len(blobs[big]) < 64<<10 || len(blobs[small]) > 200<<10 {
		t.Fatalf("fixture sizes %d %d", len(blobs[big]), len(blobs[small]))
	}

	t.Run("full GET", func(t *testing.T) {
		srv := server(t, openArchive(t, corrupt(t, img, blobs, big)))
		r := do(t, "GET", blobURL(srv.URL, big))
		if r.err == nil || len(r.body) >= len(blobs[big]) {
			t.Fatalf("damaged blob: status %d, read %d of %d bytes, error %v: a complete body was served", r.status, len(r.body), len(blobs[big]), r.err)
		}
		// From then on it is refused outright, ranges included.
		for _, rng := range []string{"", "bytes=0-9"} {
			r := do(t, "GET", blobURL(srv.URL, big), "Range", rng)
			if r.status != 500 || errorCode(t, r) != "UNKNOWN" {
				t.Fatalf("after the check, Range %q: %d %s", rng, r.status, r.body)
			}
		}
		if r := do(t, "HEAD", blobURL(srv.URL, big)); r.status != 500 {
			t.Fatalf("HEAD after the check: %d", r.status)
		}
		// The other blobs are still served.
		if r := do(t, "GET", blobURL(srv.URL, small)); r.status != 200 || verifytest.Hash(r.body) != small {
			t.Fatalf("good blob: %d", r.status)
		}
	})
	t.Run("range first", func(t *testing.T) {
		srv := server(t, openArchive(t, corrupt(t, img, blobs, small)))
		// Bytes 0-9 are intact; they are still not served from a damaged blob.
		r := do(t, "GET", blobURL(srv.URL, small), "Range", "bytes=0-9")
		if r.status != 500 || errorCode(t, r) != "UNKNOWN" {
			t.Fatalf("range of a damaged blob: %d %q", r.status, r.body)
		}
	})
	t.Run("small blob", func(t *testing.T) {
		// Smaller than what is held back: refused with a status, nothing sent.
		blobs := verifytest.Blobs{}
		tiny := image(runtimeName, linux, 5, 200, blobs)
		tm, _ := tiny.Parsed()
		d := tm.Layers[0].Digest
		if len(blobs[d]) > 1024 {
			t.Fatalf("fixture layer is %d bytes", len(blobs[d]))
		}
		srv := server(t, openArchive(t, corrupt(t, tiny, blobs, d)))
		r := do(t, "GET", blobURL(srv.URL, d))
		if r.status != 500 || errorCode(t, r) != "UNKNOWN" {
			t.Fatalf("damaged small blob: %d %q", r.status, r.body)
		}
	})
	t.Run("config", func(t *testing.T) {
		// Configs are read when the catalog is built: a damaged one stops
		// the start rather than being served.
		blobs[m.Config.Digest] = img.Config
		_, err := catalog.New([]*bundle.Archive{openArchive(t, corrupt(t, img, blobs, m.Config.Digest))})
		if !errors.Is(err, bundle.ErrDigestMismatch) {
			t.Fatalf("catalog of a bundle with a damaged config: %v", err)
		}
	})
}

func TestConcurrentClients(t *testing.T) {
	blobs := verifytest.Blobs{}
	images := []bundle.Image{image(runtimeName, linux, 1, 600<<10, blobs), image("docker.io/rancher/other:v1", linux, 2, 600<<10, blobs)}
	srv := server(t, openArchive(t, write(t, images, blobs, bundle.Zstd)))
	var digests []v1.Hash
	for _, img := range images {
		m, _ := img.Parsed()
		for _, l := range m.Layers {
			digests = append(digests, l.Digest)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32*len(digests))
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(c)))
			for _, i := range rnd.Perm(len(digests)) {
				d := digests[i]
				want := blobs[d]
				from := rnd.Intn(len(want))
				to := from + rnd.Intn(len(want)-from)
				req, _ := http.NewRequest("GET", blobURL(srv.URL, d), nil)
				if c%2 == 0 {
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
				} else {
					from, to = 0, len(want)-1
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				var got bytes.Buffer
				_, err = got.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got.Bytes(), want[from:to+1]) {
					errs <- fmt.Errorf("client %d blob %s [%d,%d]: status %d, %d bytes, %v", c, d, from, to, resp.StatusCode, got.Len(), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// randomImage is an image of one layer of size random bytes: zstd keeps
// them as they are, so a flipped byte leaves every frame valid and only
// the digest check can tell.
func randomImage(size int, blobs verifytest.Blobs) (bundle.Image, v1.Hash) {
	data := make([]byte, size)
	rand.New(rand.NewSource(9)).Read(data)
	l := verifytest.Layer{Blob: data, DiffID: verifytest.Hash(data), MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"}
	return verifytest.Image(runtimeName, "v1", linux, []verifytest.Layer{l}, blobs), verifytest.Hash(data)
}

func TestConcurrentFirstReads(t *testing.T) {
	blobs := verifytest.Blobs{}
	img, d := randomImage(5<<20, blobs)
	good := write(t, []bundle.Image{img}, blobs, bundle.Zstd)
	at := bytes.Index(good, blobs[d][3<<20:3<<20+64])
	if at < 0 {
		t.Fatal("layer bytes not stored as they are")
	}
	bad := bytes.Clone(good)
	bad[at] ^= 1
	for _, tc := range []struct {
		name   string
		bundle []byte
	}{{"good", good}, {"damaged", bad}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, openArchive(t, tc.bundle))
			results := make(chan response, 8)
			var wg sync.WaitGroup
			for i := range cap(results) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := ""
					if i%4 == 3 {
						rng = "bytes=10-19"
					}
					results <- do(t, "GET", blobURL(srv.URL, d), "Range", rng)
				}()
			}
			wg.Wait()
			close(results)
			for r := range results {
				full := r.status == 200 && r.err == nil && bytes.Equal(r.body, blobs[d])
				part := r.status == 206 && bytes.Equal(r.body, blobs[d][10:20])
				if tc.name == "good" && !full && !part {
					t.Errorf("status %d, %d bytes, %v", r.status, len(r.body), r.err)
				}
				if tc.name == "damaged" && (r.status == 206 || (r.err == nil && r.status == 200 && len(r.body) == len(blobs[d]))) {
					t.Errorf("damaged blob served as good: status %d, %d bytes", r.status, len(r.body))
				}
			}
			if r := do(t, "GET", blobURL(srv.URL, d)); tc.name == "damaged" && r.status != 500 {
				t.Errorf("after the check: %d", r.status)
			}
		})
	}
}
