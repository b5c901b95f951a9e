package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// SampleWindows lists the Windows releases in the sample set with the
// os.version their images carry, as on mcr.microsoft.com.
var SampleWindows = []struct{ Name, OSVersion string }{
	{"1809", "10.0.17763.5458"},
	{"ltsc2022", "10.0.20348.2322"},
	{"2025", "10.0.26100.2894"},
}

// Sample repositories and tags. The runtime list also carries an older
// 1809 revision, so that selection must pick the highest one.
const (
	SampleRuntime     = "rancher/rke2-runtime"
	SamplePause       = "rancher/mirrored-pause"
	SampleScratch     = "rancher/rke2-windows-scratch"
	SampleRuntimeTag  = "v1.31.2-rke2r1"
	SamplePauseTag    = "3.6"
	SampleScratchTag  = "v1.31.2"
	sampleOldRevision = "10.0.17763.4010"
)

// SampleOptions sizes the sample set.
type SampleOptions struct {
	// BytesPerVersion is roughly the uncompressed size of one Windows
	// version's images; the default keeps tests and the demo quick.
	BytesPerVersion int64
	// DistributableBase stores the Windows base layers as ordinary layers,
	// as Microsoft's images have them since 2023, rather than foreign ones
	// with URLs.
	DistributableBase bool
}

// Sample is the deterministic image set that tests, the demo and the
// benchmarks share: same options, same digests.
type Sample struct {
	// Images maps repository:tag to an image or an index.
	Images map[string]remote.Taggable
	// Order is the push order: children before the lists that name them.
	Order []string
}

// NewSample builds the sample set in memory.
func NewSample(o SampleOptions) (*Sample, error) {
	if o.BytesPerVersion <= 0 {
		o.BytesPerVersion = 2 << 20
	}
	s := &Sample{Images: map[string]remote.Taggable{}}
	b := sampleBuilder{size: o.BytesPerVersion, distributable: o.DistributableBase}
	runtime, pause, err := b.linuxChildren()
	if err != nil {
		return nil, err
	}
	for _, w := range SampleWindows {
		base, err := b.layer("base-"+w.Name, o.BytesPerVersion*6/10, types.DockerForeignLayer)
		if err != nil {
			return nil, err
		}
		rt, err := b.windowsImage("runtime-"+w.Name, w.OSVersion, base, o.BytesPerVersion*35/100)
		if err != nil {
			return nil, err
		}
		pz, err := b.windowsImage("pause-"+w.Name, w.OSVersion, base, o.BytesPerVersion*5/100)
		if err != nil {
			return nil, err
		}
		runtime = append(runtime, mutate.IndexAddendum{Add: rt, Descriptor: v1.Descriptor{Platform: windowsPlatform(w.OSVersion)}})
		pause = append(pause, mutate.IndexAddendum{Add: pz, Descriptor: v1.Descriptor{Platform: windowsPlatform(w.OSVersion)}})
		s.add(SampleRuntime+":"+SampleRuntimeTag+"-windows-"+w.Name, rt)
		if w.Name == "1809" {
			old, err := b.windowsImage("runtime-old-1809", sampleOldRevision, base, 4096)
			if err != nil {
				return nil, err
			}
			runtime = append(runtime, mutate.IndexAddendum{Add: old, Descriptor: v1.Descriptor{Platform: windowsPlatform(sampleOldRevision)}})
		}
	}
	s.add(SampleRuntime+":"+SampleRuntimeTag+"-linux-amd64", runtime[0].Add.(v1.Image))
	s.add(SampleRuntime+":"+SampleRuntimeTag, sampleIndex(runtime))
	s.add(SamplePause+":"+SamplePauseTag, sampleIndex(pause))
	scratch, err := b.ociScratch()
	if err != nil {
		return nil, err
	}
	s.add(SampleScratch+":"+SampleScratchTag, scratch)
	return s, nil
}

func (s *Sample) add(ref string, t remote.Taggable) {
	s.Images[ref] = t
	s.Order = append(s.Order, ref)
}

// Refs is the sample's image list in images.txt form for a registry host:
// what a release pipeline bundles for Windows.
func (s *Sample) Refs(host string) []string {
	return []string{
		host + "/" + SampleRuntime + ":" + SampleRuntimeTag,
		host + "/" + SamplePause + ":" + SamplePauseTag,
		host + "/" + SampleScratch + ":" + SampleScratchTag,
	}
}

// Client is what Push needs of a registry client: *registry.Client is one.
// It is an interface so that registry's own tests can use the sample set.
type Client interface {
	ParseReference(string) (name.Reference, error)
	Remote(context.Context) []remote.Option
}

// Push writes the sample set to a registry, foreign layers included, as
// mcr.microsoft.com serves them alongside their URLs.
func (s *Sample) Push(ctx context.Context, c Client, host string) error {
	for _, ref := range s.Order {
		r, err := c.ParseReference(host + "/" + ref)
		if err != nil {
			return err
		}
		opts := append(c.Remote(ctx), remote.WithNondistributable)
		switch t := s.Images[ref].(type) {
		case v1.ImageIndex:
			err = remote.WriteIndex(r, t, opts...)
		case v1.Image:
			err = remote.Write(r, t, opts...)
		}
		if err != nil {
			return fmt.Errorf("pushing sample %s: %w", r, err)
		}
	}
	return nil
}

func windowsPlatform(osVersion string) *v1.Platform {
	return &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: osVersion}
}

func sampleIndex(adds []mutate.IndexAddendum) v1.ImageIndex {
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.DockerManifestList)
}

type sampleBuilder struct {
	size          int64
	distributable bool
}

var sampleCreated = v1.Time{Time: time.Date(2024, 11, 12, 0, 0, 0, 0, time.UTC)}

func (b sampleBuilder) linuxChildren() (runtime, pause []mutate.IndexAddendum, err error) {
	lin := &v1.Platform{OS: "linux", Architecture: "amd64"}
	rt, err := b.image("linux-runtime", v1.ConfigFile{OS: "linux", Architecture: "amd64"}, nil, b.size/4)
	if err != nil {
		return nil, nil, err
	}
	pz, err := b.image("linux-pause", v1.ConfigFile{OS: "linux", Architecture: "amd64"}, nil, 32<<10)
	if err != nil {
		return nil, nil, err
	}
	return []mutate.IndexAddendum{{Add: rt, Descriptor: v1.Descriptor{Platform: lin}}},
		[]mutate.IndexAddendum{{Add: pz, Descriptor: v1.Descriptor{Platform: lin}}}, nil
}

func (b sampleBuilder) windowsImage(seed, osVersion string, base *sampleLayer, size int64) (v1.Image, error) {
	cf := v1.ConfigFile{OS: "windows", Architecture: "amd64", OSVersion: osVersion}
	return b.image(seed, cf, base, size)
}

// ociScratch is a Windows image built FROM scratch, so without os.version,
// and with OCI media types as buildx writes them, so that bundles mix
// Docker and OCI manifests like real image lists do.
func (b sampleBuilder) ociScratch() (v1.Image, error) {
	top, err := b.layer("scratch", 64<<10, types.OCILayer)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: top, MediaType: types.OCILayer})
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	diff, _ := top.DiffID()
	cf := &v1.ConfigFile{OS: "windows", Architecture: "amd64", Created: sampleCreated,
		Config: v1.Config{Entrypoint: []string{"/scratch"}}, RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diff}}}
	return mutate.ConfigFile(img, cf)
}

func (b sampleBuilder) image(seed string, cf v1.ConfigFile, base *sampleLayer, size int64) (v1.Image, error) {
	var adds []mutate.Addendum
	if base != nil && b.distributable {
		adds = append(adds, mutate.Addendum{Layer: base, MediaType: types.DockerLayer})
	} else if base != nil {
		adds = append(adds, mutate.Addendum{Layer: base, MediaType: types.DockerForeignLayer,
			URLs: []string{"https://mcr.microsoft.com/v2/windows/nanoserver/blobs/" + base.digest.String()}})
	}
	top, err := b.layer(seed, size, types.DockerLayer)
	if err != nil {
		return nil, err
	}
	adds = append(adds, mutate.Addendum{Layer: top, MediaType: types.DockerLayer})
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf.Created = sampleCreated
	cf.Config = v1.Config{Entrypoint: []string{"/" + seed}}
	cf.RootFS.Type = "layers"
	for _, a := range adds {
		d, err := a.Layer.DiffID()
		if err != nil {
			return nil, err
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, d)
	}
	return mutate.ConfigFile(img, &cf)
}

// layer builds a gzip'd tar of pseudo-random files about half of which
// compresses, like real layers, seeded by name so digests are stable.
func (b sampleBuilder) layer(seed string, size int64, mt types.MediaType) (*sampleLayer, error) {
	sum := sha256.Sum256([]byte(seed))
	rng := rand.New(rand.NewPCG(uint64(sum[0])<<8|uint64(sum[1]), uint64(sum[2])))
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	const fileSize = 1 << 20
	for i := 0; size > 0 || i == 0; i++ {
		n := min(size, fileSize)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("Files/%s/%04d.bin", seed, i), Mode: 0o644, Size: n, ModTime: sampleCreated.Time, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := io.CopyN(tw, &halfRandom{rng: rng}, n); err != nil {
			return nil, err
		}
		size -= n
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	diff := sha256.Sum256(tarBuf.Bytes())
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(gz.Bytes())
	return &sampleLayer{
		gz:     gz.Bytes(),
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest[:])},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff[:])},
		mt:     mt,
	}, nil
}

// halfRandom yields alternating 4 KiB blocks of random and repeated bytes.
type halfRandom struct {
	rng *rand.Rand
	n   int
}

func (h *halfRandom) Read(p []byte) (int, error) {
	for i := range p {
		if (h.n>>12)&1 == 0 {
			p[i] = byte(h.rng.Uint32())
		} else {
			p[i] = "ferry sample layer "[h.n%19]
		}
		h.n++
	}
	return len(p), nil
}

// sampleLayer is a layer whose bytes and digests are computed once.
type sampleLayer struct {
	gz             []byte
	digest, diffID v1.Hash
	mt             types.MediaType
}

func (l *sampleLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *sampleLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *sampleLayer) Size() (int64, error)                { return int64(len(l.gz)), nil }
func (l *sampleLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *sampleLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *sampleLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}
