package bundle

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// listManifest is what a listing needs of an image manifest: its config's
// and layers' digests and sizes. Decoding only these fields, with digests
// as plain strings checked afterwards, skips what v1.Manifest would build
// for every layer (media types, annotations, URLs, v1.Hash's own decoder),
// which is most of the cost of listing thousands of images.
type listManifest struct {
	Config listBlob
	Layers []listBlob
}

type listBlob struct {
	Digest v1.Hash
	Size   int64
}

// parseListManifest decodes an image manifest's config and layers. Like
// v1.Manifest's decoder, it fails on a digest that is not a valid hash;
// an absent digest is the zero hash.
func parseListManifest(raw []byte) (*listManifest, error) {
	type blob struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	var m struct {
		Config blob   `json:"config"`
		Layers []blob `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	out := &listManifest{Layers: make([]listBlob, len(m.Layers))}
	convert := func(b blob, to *listBlob) error {
		to.Size = b.Size
		if b.Digest == "" {
			return nil
		}
		h, err := v1.NewHash(b.Digest)
		to.Digest = h
		return err
	}
	if err := convert(m.Config, &out.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, l := range m.Layers {
		if err := convert(l, &out.Layers[i]); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return out, nil
}

// manifestRead is one index.json entry's stored manifest, read and parsed
// (m is nil when it is not an image manifest or does not parse), and its
// config when the listing needs the config for the platform.
type manifestRead struct {
	name, config    string
	raw, configRaw  []byte
	m               *listManifest
	rawOK, configOK bool
}

// parallelManifests is the number of images from which readManifests
// spreads its work over the available cores: below it, starting
// goroutines costs more than it saves.
const parallelManifests = 256

// readManifests reads and parses the manifests of index.json's entries,
// and the configs of those without a platform, on every core: each one is
// independent of the others, and thousands of them are most of the
// listing's work. It needs the walk of the headers to be complete, as
// Open leaves it; Contents stores the results in index order.
func (a *Archive) readManifests(descs []v1.Descriptor) []manifestRead {
	out := make([]manifestRead, len(descs))
	workers := 1
	if len(descs) >= parallelManifests {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(descs); i += workers {
				out[i] = a.readManifest(descs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func (a *Archive) readManifest(d v1.Descriptor) manifestRead {
	r := manifestRead{name: BlobPath(d.Digest)}
	raw, err := a.readSmall(r.name)
	if err != nil {
		return r
	}
	r.raw, r.rawOK = raw, true
	if !d.MediaType.IsImage() {
		return r
	}
	var h v1.Hash
	if r.m, err = parseListManifest(raw); err == nil {
		h = r.m.Config.Digest
	} else if h, err = configDigest(raw); err != nil {
		return r
	}
	if h == (v1.Hash{}) {
		return r
	}
	r.config = BlobPath(h)
	if d.Platform == nil {
		r.configRaw, err = a.readSmall(r.config)
		r.configOK = err == nil
	}
	return r
}

// configDigest reads only the config's digest of a manifest that does not
// parse as a whole: the config is metadata whatever the rest holds.
func configDigest(raw []byte) (v1.Hash, error) {
	var m struct {
		Config struct{ Digest string }
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return v1.Hash{}, err
	}
	return v1.NewHash(m.Config.Digest)
}
