package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

// builder gathers every archive's images before tags are resolved, since a
// tag's list depends on what all the archives hold together.
type builder struct {
	o        *options
	archive  int // the index of the archive being added
	c        *Catalog
	tagged   map[string]map[string][]*Manifest // repo -> tag -> images
	sources  map[v1.Hash]*Manifest             // upstream lists by digest (no children yet)
	sourceOf map[v1.Hash]v1.Hash               // image digest -> its upstream list
}

func (b *builder) add(a *bundle.Archive) error {
	idx, err := a.Index()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue // nested indexes: nothing names their children
		}
		n := b.o.imageName(d)
		if n == "" {
			b.c.unnamed = append(b.c.unnamed, Unnamed{Archive: b.archive, Digest: d.Digest, Tag: d.Annotations[bundle.AnnotationRefName]})
			continue
		}
		repo, tag, err := b.o.repoTag(n)
		if err != nil {
			return fmt.Errorf("image name %q: %w", n, err)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		m, err := b.image(a, img, d)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		r := b.repo(repo)
		if same, ok := r.digests[m.Digest]; ok {
			m = same // one image under several names or in several archives
		}
		m.Names = append(m.Names, n)
		r.digests[m.Digest] = m
		if tag != "" {
			b.tagged[repo][tag] = append(b.tagged[repo][tag], m)
		}
		if err := b.source(a, d, m); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

// imageName is the name an index.json entry gives its image: containerd's
// annotation, else an OCI ref.name that is a whole name (skopeo and podman
// OCI archives write the name given there). A ref.name that is only a tag
// ("v1"), or no name at all, names no repository: the image is named in
// the fallback repository when there is one (by digest when untagged),
// else not at all.
func (o *options) imageName(d v1.Descriptor) string {
	if n := d.Annotations[bundle.AnnotationContainerdName]; n != "" {
		return n
	}
	ref := d.Annotations[bundle.AnnotationRefName]
	switch {
	case strings.Contains(ref, "/"):
		return ref
	case o.repository == "":
		return ""
	case ref != "":
		return o.repository + ":" + ref
	}
	return o.repository + "@" + d.Digest.String()
}

func (b *builder) repo(name string) *repository {
	r, ok := b.c.repos[name]
	if !ok {
		r = &repository{tags: map[string]*Manifest{}, digests: map[v1.Hash]*Manifest{}}
		b.c.repos[name] = r
		b.tagged[name] = map[string][]*Manifest{}
	}
	return r
}

// image records an image manifest and registers its config and layers.
func (b *builder) image(a *bundle.Archive, img v1.Image, d v1.Descriptor) (*Manifest, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	p := d.Platform
	if p == nil {
		if cf, err := img.ConfigFile(); err == nil {
			p = cf.Platform()
		}
	}
	cfg, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, err
	}
	b.blob(a, m.Config, cfg)
	for _, l := range m.Layers {
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		b.blob(a, l, layer)
	}
	return &Manifest{Raw: raw, MediaType: d.MediaType, Digest: d.Digest, Platform: p}, nil
}

// blob registers where a blob is read from: the archive's blobs/ when it
// is stored there, else the layer (docker save archives). A foreign layer
// left out of a bundle is not registered: there is nothing to serve.
func (b *builder) blob(a *bundle.Archive, d v1.Descriptor, l v1.Layer) {
	if _, ok := b.c.blobs[d.Digest]; ok {
		return
	}
	if _, size, err := a.BlobAt(d.Digest); err == nil {
		b.c.blobs[d.Digest] = blobSource{archive: a, digest: d.Digest, size: size}
		return
	}
	if bundle.IsForeign(d) {
		return
	}
	b.c.blobs[d.Digest] = blobSource{layer: l, digest: d.Digest, size: d.Size}
}

// source records the upstream list an image was chosen from, if the
// archive kept it.
func (b *builder) source(a *bundle.Archive, d v1.Descriptor, m *Manifest) error {
	s := d.Annotations[bundle.AnnotationSourceDigest]
	if s == "" {
		return nil
	}
	h, err := v1.NewHash(s)
	if err != nil {
		return fmt.Errorf("source list digest %q: %w", s, err)
	}
	b.sourceOf[m.Digest] = h
	if _, ok := b.sources[h]; ok {
		return nil
	}
	rc, err := a.Blob(h)
	if err != nil {
		return err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, bundle.MaxSmallMetadata+1))
	if err != nil {
		return fmt.Errorf("source list %s: %w", h, err)
	}
	mt := types.MediaType(d.Annotations[bundle.AnnotationSourceMediaType])
	b.sources[h] = &Manifest{Raw: raw, MediaType: mt, Digest: h, Upstream: true}
	return nil
}

// resolveTags decides what each tag serves, and makes upstream lists
// reachable by digest in the repositories holding their children.
func (b *builder) resolveTags() error {
	for repo, tags := range b.tagged {
		r := b.c.repos[repo]
		var images []*Manifest
		for _, m := range r.digests {
			images = append(images, m)
		}
		for _, m := range images {
			if s, ok := b.sourceOf[m.Digest]; ok {
				up, err := b.upstream(r, s)
				if err != nil {
					return fmt.Errorf("%s: %w", repo, err)
				}
				m.List = up
			}
		}
		for tag, children := range tags {
			m, err := b.resolve(r, children)
			if err != nil {
				return fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
			r.tags[tag] = m
			r.digests[m.Digest] = m
		}
	}
	return nil
}

// upstream adds a repository's copy of an upstream list, with the children
// the catalog holds.
func (b *builder) upstream(r *repository, h v1.Hash) (*Manifest, error) {
	if m, ok := r.digests[h]; ok {
		return m, nil
	}
	src := b.sources[h]
	idx, err := v1.ParseIndexManifest(bytes.NewReader(src.Raw))
	if err != nil {
		return nil, fmt.Errorf("upstream list %s: %w", h, err)
	}
	m := *src
	m.Children = nil
	for _, d := range idx.Manifests {
		if c, ok := r.digests[d.Digest]; ok {
			m.Children = append(m.Children, c)
		}
	}
	r.digests[h] = &m
	return &m, nil
}

// Complete reports whether the catalog holds every child an index lists.
func (m *Manifest) Complete() bool {
	if !m.MediaType.IsIndex() {
		return true
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(m.Raw))
	return err == nil && len(idx.Manifests) == len(m.Children)
}

// resolve picks what a tag serves: the upstream list when the catalog holds
// every child it lists and it lists every image tagged; else the one image;
// else a list merged from the images.
func (b *builder) resolve(r *repository, tagged []*Manifest) (*Manifest, error) {
	children := dedupe(tagged)
	for _, c := range children {
		s, ok := b.sourceOf[c.Digest]
		if !ok {
			continue
		}
		if up := r.digests[s]; up.Complete() && covers(up, children) {
			return up, nil
		}
	}
	if len(children) == 1 {
		return children[0], nil
	}
	return merge(children)
}

func dedupe(ms []*Manifest) []*Manifest {
	seen := map[v1.Hash]bool{}
	var out []*Manifest
	for _, m := range ms {
		if !seen[m.Digest] {
			seen[m.Digest] = true
			out = append(out, m)
		}
	}
	return out
}

func covers(list *Manifest, children []*Manifest) bool {
	in := map[v1.Hash]bool{}
	for _, c := range list.Children {
		in[c.Digest] = true
	}
	for _, c := range children {
		if !in[c.Digest] {
			return false
		}
	}
	return true
}

// merge makes one list of images tagged alike across archives, one per
// platform, in a stable order; Docker-typed children get a Docker list.
func merge(children []*Manifest) (*Manifest, error) {
	byPlatform := map[string]*Manifest{}
	mt := types.DockerManifestList
	for _, c := range children {
		key := platformKey(c.Platform)
		if other, ok := byPlatform[key]; ok {
			return nil, fmt.Errorf("%w: %s and %s are both for %s", ErrConflict, other.Digest, c.Digest, key)
		}
		byPlatform[key] = c
		if c.MediaType != types.DockerManifestSchema2 {
			mt = types.OCIImageIndex
		}
	}
	sorted := append([]*Manifest(nil), children...)
	sort.Slice(sorted, func(i, j int) bool { return platformKey(sorted[i].Platform) < platformKey(sorted[j].Platform) })
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: mt}
	for _, c := range sorted {
		idx.Manifests = append(idx.Manifests, c.Descriptor())
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Manifest{Raw: raw, MediaType: mt, Digest: h, Children: sorted}, nil
}

func platformKey(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	return p.String()
}
