package bundle

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Images lists the images the archive holds, as `ferry list` shows them.
func (a *Archive) Images() []ImageInfo { return a.Contents().Images() }

// Contents is the archive's metadata, as ReadContents reports it for a
// stream, but read only as far as listing the images needs: sizes of every
// entry, index.json, manifest.json and the image manifests. A config is read
// only when its platform is wanted and nothing else gives it: an index.json
// entry without a platform (a ferry bundle's entries carry theirs), or an
// archive listed from manifest.json. Source indexes are not read.
// Unreadable entries are left out of Small, which Images reports as unknown
// sizes and platforms.
func (a *Archive) Contents() *Contents {
	// The maps are sized up front: grown entry by entry, they rehash over
	// and over in an archive of thousands of images.
	images := len(a.docker)
	if a.index != nil {
		images = max(images, len(a.index.Manifests))
	}
	c := &Contents{Compression: a.src.compression, Index: a.index, Docker: a.docker,
		Small: make(map[string][]byte, images), Sizes: make(map[string]int64, len(a.scan.Entries())),
		Complete: true, MetadataFirst: true, parsed: make(map[string]*listManifest, images)}
	for _, e := range a.scan.Entries() {
		c.Sizes[e.Name] = e.Size()
	}
	// needed is the metadata a loader reads, read here or not: it decides
	// whether the archive is metadata-first.
	needed := make(map[string]bool, 3*images)
	fromIndex := a.index != nil && len(a.index.Manifests) > 0
	if a.index != nil {
		for i, r := range a.readManifests(a.index.Manifests) {
			d := a.index.Manifests[i]
			if src, ok := d.Annotations[AnnotationSourceDigest]; ok {
				if h, err := v1.NewHash(src); err == nil {
					needed[BlobPath(h)] = true
				}
			}
			c.keepRead(needed, r)
		}
	}
	for _, dm := range a.docker {
		config := path.Clean(dm.Config)
		needed[config] = true
		if fromIndex {
			continue
		}
		if raw, err := a.readSmall(config); err == nil {
			c.Small[config] = raw
		}
	}
	c.MetadataFirst = a.metadataFirst(needed)
	c.BytesRead = a.Inflated()
	return c
}

// keepRead stores what readManifests read of one image, and marks its
// manifest and config as metadata a loader needs.
func (c *Contents) keepRead(needed map[string]bool, r manifestRead) {
	needed[r.name] = true
	if r.rawOK {
		c.Small[r.name] = r.raw
	}
	if r.m != nil {
		c.parsed[r.name] = r.m
	}
	if r.config != "" {
		needed[r.config] = true
	}
	if r.configOK {
		c.Small[r.config] = r.configRaw
	}
}

// metadataFirst reports whether everything the metadata needs (the layout
// files, and the manifests and configs it names) comes before the first
// entry that is not metadata: what ReadContents calls metadata-first.
func (a *Archive) metadataFirst(metadata map[string]bool) bool {
	layerSeen := false
	for _, e := range a.scan.Entries() {
		needed := metadata[e.Name] || (e.Header.Typeflag == tar.TypeReg && MetadataRank(e.Name, 0, nil) < RankSmall)
		if needed && layerSeen {
			return false
		}
		layerSeen = layerSeen || a.bulk[e.Index]
	}
	return true
}

// Index returns index.json as an image index whose children are read from
// the archive. An archive without index.json gets an index built from
// manifest.json's images, with their names as annotations.
func (a *Archive) Index() (v1.ImageIndex, error) {
	if a.index == nil {
		return a.dockerIndex()
	}
	raw, err := a.readSmall(IndexFile)
	if err != nil {
		return nil, err
	}
	return &storedIndex{a: a, raw: raw, m: a.index}, nil
}

func (a *Archive) dockerIndex() (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, info := range a.Contents().Images() {
		for _, n := range info.Names {
			ref, err := name.ParseReference(n)
			if err != nil {
				continue
			}
			img, err := a.dockerImage(ref)
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
				Annotations: map[string]string{AnnotationContainerdName: n}, Platform: info.Platform}})
		}
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// storedIndex is an index stored in the archive: index.json itself, or an
// index blob under blobs/.
type storedIndex struct {
	a   *Archive
	raw []byte
	m   *v1.IndexManifest
}

func (s *storedIndex) MediaType() (types.MediaType, error) {
	if s.m.MediaType != "" {
		return s.m.MediaType, nil
	}
	return types.OCIImageIndex, nil
}

func (s *storedIndex) Digest() (v1.Hash, error)                  { return partial.Digest(s) }
func (s *storedIndex) Size() (int64, error)                      { return partial.Size(s) }
func (s *storedIndex) IndexManifest() (*v1.IndexManifest, error) { m := *s.m; return &m, nil }
func (s *storedIndex) RawManifest() ([]byte, error)              { return s.raw, nil }

func (s *storedIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := s.child(h)
	if err != nil {
		return nil, err
	}
	return s.a.image(d)
}

func (s *storedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	raw, err := s.a.readBlob(h)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return &storedIndex{a: s.a, raw: raw, m: m}, nil
}

// child returns the descriptor of a child by digest, so its media type
// and platform come with it.
func (s *storedIndex) child(h v1.Hash) (v1.Descriptor, error) {
	for _, d := range s.m.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: %s is not listed in the index", ErrNotFound, h)
}
