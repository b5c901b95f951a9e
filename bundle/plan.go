package bundle

import (
	"bytes"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry names shared by the OCI image layout and docker's archive format.
const (
	OCILayoutFile    = "oci-layout"
	IndexFile        = "index.json"
	ManifestFile     = "manifest.json"
	RepositoriesFile = "repositories"
	BlobsDir         = "blobs/sha256/"
)

// Annotations loaders use to name images from index.json.
const (
	AnnotationContainerdName = "io.containerd.image.name"
	AnnotationRefName        = "org.opencontainers.image.ref.name"
)

// Annotations on an image's index.json entry naming the manifest list or
// OCI index it was chosen from (Image.SourceIndex). The list itself is
// stored as a blob but is not an entry of index.json: loaders would try to
// load it and fail on the children a bundle for one platform leaves out.
const (
	AnnotationSourceDigest    = "com.github.rancher.ferry.source.digest"
	AnnotationSourceMediaType = "com.github.rancher.ferry.source.mediaType"
)

// record is one planned tar entry: inline bytes, a JSON array encoded as
// it is written, or a blob streamed from Blobs.
type record struct {
	name string
	dir  bool
	data []byte
	list *jsonList
	blob *v1.Descriptor
}

// path is the entry's name in the tar.
func (r record) path() string {
	if r.name == "" && r.blob != nil {
		return BlobPath(r.blob.Digest)
	}
	return r.name
}

func (r record) size() int64 {
	switch {
	case r.blob != nil:
		return r.blob.Size
	case r.list != nil:
		return r.list.size
	}
	return int64(len(r.data))
}

// dockerManifest is one entry of docker's manifest.json.
type dockerManifest struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
}

// plan lays out every entry of the bundle before anything is written, so
// the metadata can go first and each blob is stored once. It returns the
// records and how many of them form the metadata section.
func plan(images []Image, o options) ([]record, int, error) {
	var (
		docker   []dockerRef
		byDigest = map[v1.Hash]int{}
		repos    repositories
		small    []record
		layers   []record
		seen     = map[v1.Hash]bool{}
	)
	addBlob := func(dst *[]record, d v1.Descriptor, data []byte) {
		if seen[d.Digest] {
			return
		}
		seen[d.Digest] = true
		r := record{data: data}
		if data == nil {
			// A streamed blob's name is made when it is written: a
			// bundle of thousands of layers need not hold them all.
			d := d
			r.blob = &d
		} else {
			r.name = BlobPath(d.Digest)
		}
		*dst = append(*dst, r)
	}
	for i := range images {
		img := &images[i]
		if err := checkName(img); err != nil {
			return nil, 0, err
		}
		m, err := img.Parsed()
		if err != nil {
			return nil, 0, err
		}
		if err := checkBlob(img.Name+" manifest", img.Descriptor, img.Manifest); err != nil {
			return nil, 0, err
		}
		if err := checkBlob(img.Name+" config", m.Config, img.Config); err != nil {
			return nil, 0, err
		}
		addBlob(&small, img.Descriptor, img.Manifest)
		addBlob(&small, m.Config, img.Config)
		if src := img.SourceIndex; src != nil {
			if err := checkSourceIndex(img); err != nil {
				return nil, 0, err
			}
			addBlob(&small, src.Descriptor, src.Manifest)
		}
		for _, l := range m.Layers {
			if o.skipForeign && IsForeign(l) {
				continue
			}
			addBlob(&layers, l, nil)
		}
		if j, ok := byDigest[img.Descriptor.Digest]; ok {
			docker[j].more = append(docker[j].more, i)
		} else {
			// Made now only to fail before anything is written.
			if _, err := dockerEntry(img, m); err != nil {
				return nil, 0, err
			}
			byDigest[img.Descriptor.Digest] = len(docker)
			docker = append(docker, dockerRef{first: i})
		}
		if img.Tag != "" && len(m.Layers) > 0 {
			repos.add(i)
		}
	}
	head, err := metadataRecords(images, docker, repos)
	if err != nil {
		return nil, 0, err
	}
	meta := append(head, small...)
	return append(meta, layers...), len(meta), nil
}

// dockerRef is an entry of manifest.json before it is made: the first
// image with its manifest, and the later ones that add their tags to it.
// Entries are made from the images as they are written, so that a bundle of
// thousands of images does not hold every entry's paths meanwhile.
type dockerRef struct {
	first int
	more  []int
}

// dockerItem makes the manifest.json entry d stands for.
func dockerItem(images []Image, d dockerRef) (any, error) {
	img := &images[d.first]
	m, err := img.Parsed()
	if err != nil {
		return nil, err
	}
	dm, err := dockerEntry(img, m)
	if err != nil {
		return nil, err
	}
	for _, k := range d.more {
		dm.RepoTags = appendTag(dm.RepoTags, &images[k])
	}
	return dm, nil
}

// metadataRecords lays out the metadata files. index.json's and
// manifest.json's entries are made from images as they are written, in
// order.
func metadataRecords(images []Image, docker []dockerRef, repos repositories) ([]record, error) {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	indexJSON, err := indexList(index, len(images), func(i int) (any, error) { return indexEntry(&images[i]), nil })
	if err != nil {
		return nil, err
	}
	dockerJSON, err := newJSONList([]byte("["), []byte("]"), len(docker), func(i int) (any, error) { return dockerItem(images, docker[i]) })
	if err != nil {
		return nil, err
	}
	reposJSON, err := repos.marshal(images)
	if err != nil {
		return nil, err
	}
	return []record{
		{name: OCILayoutFile, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: IndexFile, list: indexJSON},
		{name: ManifestFile, list: dockerJSON},
		{name: RepositoriesFile, data: reposJSON},
		{name: "blobs/", dir: true},
		{name: BlobsDir, dir: true},
	}, nil
}

// BlobPath is where a blob lives inside a bundle.
func BlobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// indexEntry is the image's descriptor as index.json lists it: only the
// fields that describe the manifest itself, plus the names loaders use.
func indexEntry(img *Image) v1.Descriptor {
	src := img.Descriptor
	d := v1.Descriptor{MediaType: src.MediaType, Size: src.Size, Digest: src.Digest, Platform: src.Platform}
	d.Annotations = map[string]string{AnnotationContainerdName: img.Name}
	if img.Tag != "" {
		d.Annotations[AnnotationRefName] = img.Tag
	}
	if src := img.SourceIndex; src != nil {
		d.Annotations[AnnotationSourceDigest] = src.Descriptor.Digest.String()
		d.Annotations[AnnotationSourceMediaType] = string(src.Descriptor.MediaType)
	}
	return d
}

// checkSourceIndex refuses a source index that is not one, does not match
// its descriptor or does not list the image: verify would reject the bundle.
func checkSourceIndex(img *Image) error {
	src := img.SourceIndex
	if !src.Descriptor.MediaType.IsIndex() {
		return fmt.Errorf("%s: source index media type %s is not an index", img.Name, src.Descriptor.MediaType)
	}
	if err := checkBlob(img.Name+" source index", src.Descriptor, src.Manifest); err != nil {
		return err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(src.Manifest))
	if err != nil {
		return fmt.Errorf("%s: parsing source index: %w", img.Name, err)
	}
	for _, d := range idx.Manifests {
		if d.Digest == img.Descriptor.Digest {
			return nil
		}
	}
	return fmt.Errorf("%s: source index %s does not list manifest %s", img.Name, src.Descriptor.Digest, img.Descriptor.Digest)
}

func dockerEntry(img *Image, m *v1.Manifest) (dockerManifest, error) {
	dm := dockerManifest{Config: BlobPath(m.Config.Digest), RepoTags: appendTag(nil, img)}
	var diffIDs []v1.Hash
	for _, l := range m.Layers {
		dm.Layers = append(dm.Layers, BlobPath(l.Digest))
		if !IsForeign(l) {
			continue
		}
		if diffIDs == nil {
			cf, err := v1.ParseConfigFile(bytes.NewReader(img.Config))
			if err != nil {
				return dm, fmt.Errorf("%s: parsing config: %w", img.Name, err)
			}
			diffIDs = cf.RootFS.DiffIDs
		}
		if i := len(dm.Layers) - 1; i < len(diffIDs) {
			if dm.LayerSources == nil {
				dm.LayerSources = map[v1.Hash]v1.Descriptor{}
			}
			dm.LayerSources[diffIDs[i]] = l
		}
	}
	return dm, nil
}

// appendTag keeps RepoTags sorted and free of repeats, for stable output.
func appendTag(tags []string, img *Image) []string {
	if img.Tag == "" {
		return tags
	}
	for _, t := range tags {
		if t == img.Name {
			return tags
		}
	}
	tags = append(tags, img.Name)
	sort.Strings(tags)
	return tags
}

// checkBlob refuses inline bytes that do not match their descriptor.
func checkBlob(what string, d v1.Descriptor, data []byte) error {
	h, n, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if n != d.Size || h != d.Digest {
		return fmt.Errorf("%w: %s is %s (%d bytes), descriptor says %s (%d bytes)", ErrDigestMismatch, what, h, n, d.Digest, d.Size)
	}
	return nil
}
