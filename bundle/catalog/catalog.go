package catalog

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

var (
	// ErrNotFound is returned for a repository, tag, digest or blob the
	// catalog does not hold.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when one tag names two different images for
	// the same platform across the archives.
	ErrConflict = errors.New("conflicting images")
)

// Manifest is an image manifest or an index as the catalog serves it.
type Manifest struct {
	Raw       []byte
	MediaType types.MediaType
	Digest    v1.Hash
	// Platform is an image's platform as its archive records it; nil for
	// an index.
	Platform *v1.Platform
	// Children are the manifests an index lists that the catalog holds,
	// in the index's order; nil for an image.
	Children []*Manifest
	// Upstream is true for an index served with the bytes it was
	// published with, false for one merged here.
	Upstream bool
	// Names are the names the archives give an image, as written there
	// (docker.io/rancher/x:1, before any map or prefix); nil for an index.
	Names []string
	// List is the upstream list an image was chosen from, when an archive
	// carries it, with the children the catalog holds; nil otherwise.
	List *Manifest
}

// Descriptor describes the manifest.
func (m *Manifest) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: m.MediaType, Size: int64(len(m.Raw)), Digest: m.Digest, Platform: m.Platform}
}

// Catalog is the registry view of a set of archives. It is read-only after
// New and safe for concurrent use.
type Catalog struct {
	repos   map[string]*repository
	blobs   map[v1.Hash]blobSource
	unnamed []Unnamed
}

// Unnamed is an image an archive holds without a repository to serve it
// under: its org.opencontainers.image.ref.name is only a tag, or it has
// no name. WithRepository names such images.
type Unnamed struct {
	// Archive is the archive's index in the slice given to New.
	Archive int
	Digest  v1.Hash
	// Tag is the bare ref.name, "" when the image has none.
	Tag string
}

// Unnamed lists the images the catalog left out for want of a name, in
// archive order.
func (c *Catalog) Unnamed() []Unnamed { return append([]Unnamed(nil), c.unnamed...) }

// blobSource opens a blob: by digest from an archive's blobs/ when it is
// stored there, else through the go-containerregistry layer that yields it.
type blobSource struct {
	archive *bundle.Archive
	layer   v1.Layer
	digest  v1.Hash
	size    int64
}

func (s blobSource) open() (io.ReadCloser, error) {
	if s.archive != nil {
		return s.archive.Blob(s.digest)
	}
	rc, err := s.layer.Compressed()
	if err != nil {
		return nil, err
	}
	return bundle.VerifyingReader(rc, v1.Descriptor{Digest: s.digest, Size: s.size}), nil
}

type repository struct {
	tags    map[string]*Manifest
	digests map[v1.Hash]*Manifest
}

// New builds the catalog of archives; the caller keeps them open while the
// catalog is used.
func New(archives []*bundle.Archive, opts ...Option) (*Catalog, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	b := &builder{o: o, tagged: map[string]map[string][]*Manifest{}, sources: map[v1.Hash]*Manifest{},
		sourceOf: map[v1.Hash]v1.Hash{}, c: &Catalog{repos: map[string]*repository{}, blobs: map[v1.Hash]blobSource{}}}
	for i, a := range archives {
		if a == nil {
			return nil, fmt.Errorf("catalog: nil archive")
		}
		b.archive = i
		if err := b.add(a); err != nil {
			return nil, err
		}
	}
	if err := b.resolveTags(); err != nil {
		return nil, err
	}
	return b.c, nil
}

// Repositories lists the repository names, sorted.
func (c *Catalog) Repositories() []string {
	out := make([]string, 0, len(c.repos))
	for r := range c.repos {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Tags lists a repository's tags, sorted.
func (c *Catalog) Tags(repo string) ([]string, error) {
	r, ok := c.repos[repo]
	if !ok {
		return nil, fmt.Errorf("%w: repository %s", ErrNotFound, repo)
	}
	out := make([]string, 0, len(r.tags))
	for t := range r.tags {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// Manifest returns what repo:ref resolves to; ref is a tag or a digest.
func (c *Catalog) Manifest(repo, ref string) (*Manifest, error) {
	r, ok := c.repos[repo]
	if !ok {
		return nil, fmt.Errorf("%w: repository %s", ErrNotFound, repo)
	}
	if strings.Contains(ref, ":") {
		h, err := v1.NewHash(ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %s@%s: %w", ErrNotFound, repo, ref, err)
		}
		if m, ok := r.digests[h]; ok {
			return m, nil
		}
		return nil, fmt.Errorf("%w: manifest %s@%s", ErrNotFound, repo, ref)
	}
	if m, ok := r.tags[ref]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("%w: tag %s:%s", ErrNotFound, repo, ref)
}

// Manifests returns every manifest a repository holds by digest (images,
// the upstream lists they came from and lists merged for tags), in digest
// order.
func (c *Catalog) Manifests(repo string) ([]*Manifest, error) {
	r, ok := c.repos[repo]
	if !ok {
		return nil, fmt.Errorf("%w: repository %s", ErrNotFound, repo)
	}
	out := make([]*Manifest, 0, len(r.digests))
	for _, m := range r.digests {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest.String() < out[j].Digest.String() })
	return out, nil
}

// Blob opens a blob: a layer or config of an image the catalog holds. The
// reader fails at EOF with bundle.ErrDigestMismatch unless the bytes hash
// to h. size is the blob's size.
func (c *Catalog) Blob(h v1.Hash) (rc io.ReadCloser, size int64, err error) {
	src, ok := c.blobs[h]
	if !ok {
		return nil, 0, fmt.Errorf("%w: blob %s", ErrNotFound, h)
	}
	rc, err = src.open()
	return rc, src.size, err
}

// BlobAt gives random access to a blob's bytes, unchecked, for range
// reads; ok is false when the blob is only readable as a stream (layers of
// docker save archives, which are compressed as they are read).
func (c *Catalog) BlobAt(h v1.Hash) (ra io.ReaderAt, size int64, ok bool) {
	src, found := c.blobs[h]
	if !found || src.archive == nil {
		return nil, 0, false
	}
	ra, size, err := src.archive.BlobAt(h)
	return ra, size, err == nil
}

// BlobSection gives a blob's bytes, unchecked, to read in order with
// seeks between reads (see bundle.Archive.BlobSection); ok is false when
// the blob is only readable as a stream, as with BlobAt. Close it.
func (c *Catalog) BlobSection(h v1.Hash) (rs io.ReadSeekCloser, size int64, ok bool) {
	src, found := c.blobs[h]
	if !found || src.archive == nil {
		return nil, 0, false
	}
	rs, size, err := src.archive.BlobSection(h)
	return rs, size, err == nil
}

// Position reports where a blob is stored: its archive and the offset of
// its bytes in that archive's tar stream. ok is false for a blob the
// catalog does not hold or reads through a layer (docker save archives).
// Reading the blobs of an archive that is not Seekable in ascending offset
// order decompresses it once; see bundle.Archive.BlobOffset.
func (c *Catalog) Position(h v1.Hash) (a *bundle.Archive, offset int64, ok bool) {
	src, found := c.blobs[h]
	if !found || src.archive == nil {
		return nil, 0, false
	}
	offset, _, err := src.archive.BlobOffset(h)
	return src.archive, offset, err == nil
}

// Size reports a blob's size, if the catalog holds it.
func (c *Catalog) Size(h v1.Hash) (int64, bool) {
	src, ok := c.blobs[h]
	return src.size, ok
}

// repoTag maps an archive's image name to the catalog's repository and
// tag (tag "" for a digest-only name).
func (o *options) repoTag(n string) (string, string, error) {
	ref, err := name.ParseReference(n)
	if err != nil {
		return "", "", err
	}
	repo := o.rename(ref.Context().RepositoryStr())
	if t, ok := ref.(name.Tag); ok {
		return repo, t.TagStr(), nil
	}
	return repo, "", nil
}
