package registry

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/registry/platform"
	"github.com/rancher/ferry/registry/registrytest"
)

var (
	mfSampleOnce sync.Once
	mfSample     *registrytest.Sample
	mfSampleErr  error
)

// mfRegistry is ggcr's in-memory registry behind a request log, so tests
// can tell what was written and whether a blob was mounted. ggcr keeps
// blobs per registry; the wrapper keeps them per repository, as
// distribution does, so copies between repositories are real.
type mfRegistry struct {
	host   string
	client *Client
	warn   *bytes.Buffer

	mu       sync.Mutex
	requests []string
	blobs    map[string]map[string]bool // repository -> digest -> present
	mounted  int
	// failListPut answers list PUTs as distribution does for a list whose
	// child it does not hold.
	failListPut bool
}

func newMFRegistry(t *testing.T) *mfRegistry {
	t.Helper()
	m := &mfRegistry{warn: &bytes.Buffer{}, blobs: map[string]map[string]bool{}}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.requests = append(m.requests, r.Method+" "+r.URL.RequestURI())
		fail := m.failListPut && r.Method == http.MethodPut && types.MediaType(r.Header.Get("Content-Type")).IsIndex()
		m.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`))
			return
		}
		m.serveBlobs(w, r, reg)
	}))
	t.Cleanup(srv.Close)
	m.host = strings.TrimPrefix(srv.URL, "http://")
	m.client = newClient(t, WithInsecureRegistries(m.host), WithWarnings(m.warn), WithRetryBackoff(remote.Backoff{Steps: 1}))
	return m
}

// serveBlobs keeps track of blobs per repository: uploads and mounts add
// them, reads of a blob the repository does not hold are 404.
func (m *mfRegistry) serveBlobs(w http.ResponseWriter, r *http.Request, next http.Handler) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/")
	if !ok {
		next.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && q.Get("mount") != "":
		if m.blobs[q.Get("from")][q.Get("mount")] {
			m.addBlob(repo, q.Get("mount"))
			m.mounted++
			w.Header().Set("Location", "/v2/"+repo+"/blobs/"+q.Get("mount"))
			w.WriteHeader(http.StatusCreated)
			return
		}
	case r.Method == http.MethodPut && q.Get("digest") != "":
		m.addBlob(repo, q.Get("digest"))
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(rest, "uploads"):
		if !m.blobs[repo][rest] {
			w.WriteHeader(http.StatusNotFound)
			return
		}
	}
	next.ServeHTTP(w, r)
}

func (m *mfRegistry) addBlob(repo, digest string) {
	if m.blobs[repo] == nil {
		m.blobs[repo] = map[string]bool{}
	}
	m.blobs[repo][digest] = true
}

// withSample pushes the sample set.
func (m *mfRegistry) withSample(t *testing.T) *mfRegistry {
	t.Helper()
	mfSampleOnce.Do(func() {
		mfSample, mfSampleErr = registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: 128 << 10})
	})
	if mfSampleErr != nil {
		t.Fatal(mfSampleErr)
	}
	if err := mfSample.Push(context.Background(), m.client, m.host); err != nil {
		t.Fatal(err)
	}
	m.reset()
	return m
}

func (m *mfRegistry) reset() {
	m.mu.Lock()
	m.requests = nil
	m.mounted = 0
	m.mu.Unlock()
}

// writes are the requests since reset that could change the registry.
func (m *mfRegistry) writes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.requests {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			out = append(out, r)
		}
	}
	return out
}

func (m *mfRegistry) ref(s string) string { return m.host + "/" + s }

// push writes img to repo:tag and returns its digest.
func (m *mfRegistry) push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := m.client.ParseReference(m.ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, m.client.Remote(context.Background())...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// platformImage is a random image whose config says p, as Docker or OCI.
func platformImage(t *testing.T, p string, oci bool) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	plat, err := v1.ParsePlatform(p)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = plat.OS, plat.Architecture, plat.Variant, plat.OSVersion
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img
}

func sampleTags(m *mfRegistry, suffixes ...string) []string {
	var out []string
	for _, s := range suffixes {
		out = append(out, m.ref(registrytest.SampleRuntime+":"+registrytest.SampleRuntimeTag+"-"+s))
	}
	return out
}

func mustTargets(t *testing.T, list string) []platform.Target {
	t.Helper()
	ts, err := platform.ParseTargetList(list)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func platforms(ds []v1.Descriptor) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Platform.String())
	}
	return strings.Join(out, " ")
}

// sampleForeignLayer is the foreign base layer of a sample image.
func sampleForeignLayer(t *testing.T, ref string) v1.Descriptor {
	t.Helper()
	m, err := mfSample.Images[ref].(v1.Image).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType == types.DockerForeignLayer {
			return l
		}
	}
	t.Fatalf("%s has no foreign layer", ref)
	return v1.Descriptor{}
}

func (m *mfRegistry) hasBlob(t *testing.T, repo string, h v1.Hash) bool {
	t.Helper()
	r, err := m.client.ParseReference(m.ref(repo + ":x"))
	if err != nil {
		t.Fatal(err)
	}
	rr, err := m.client.newRepoReader(context.Background(), r.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = rr.headBlob(context.Background(), h)
	if err != nil && !isProblem(err) {
		t.Fatal(err)
	}
	return err == nil
}

func hasCheck(r *IndexReport, name string, ok bool) bool {
	for _, c := range r.Checks {
		if c.Name == name && c.OK == ok {
			return true
		}
	}
	return false
}
