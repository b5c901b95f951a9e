package bundle

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Blob opens a blob stored in the archive by digest. The reader fails at
// EOF with ErrDigestMismatch unless the bytes hash to h.
func (a *Archive) Blob(h v1.Hash) (io.ReadCloser, error) {
	return a.blob(v1.Descriptor{Digest: h, Size: -1})
}

// blob opens the blob d describes; a size of -1 takes the stored size.
func (a *Archive) blob(d v1.Descriptor) (io.ReadCloser, error) {
	e, err := a.resolve(BlobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	if d.Size == -1 {
		d.Size = e.Size()
	}
	if e.Size() != d.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, its descriptor says %d", ErrSizeMismatch, BlobPath(d.Digest), e.Size(), d.Size)
	}
	return VerifyingReader(a.src.section(e.DataOffset, e.Size()), d), nil
}

// readBlob reads a small blob whole and checks its digest.
func (a *Archive) readBlob(h v1.Hash) ([]byte, error) {
	raw, err := a.readSmall(BlobPath(h))
	if err != nil {
		return nil, err
	}
	if got, _, err := v1.SHA256(bytes.NewReader(raw)); err != nil || got != h {
		return nil, fmt.Errorf("%w: %s hashes to %s", ErrDigestMismatch, BlobPath(h), got)
	}
	return raw, nil
}

// Image returns the image a reference names: by digest, or by the name
// loaders see (io.containerd.image.name, org.opencontainers.image.ref.name
// or docker's RepoTags). Manifests, configs and layers are the archive's
// bytes, so every digest is the one stored.
func (a *Archive) Image(ref name.Reference) (v1.Image, error) {
	if ref == nil {
		return nil, fmt.Errorf("%w: Image needs a reference", ErrNilArgument)
	}
	if a.index != nil && len(a.index.Manifests) > 0 {
		d, err := a.find(ref)
		if err != nil {
			return nil, err
		}
		return a.image(d)
	}
	return a.dockerImage(ref)
}

// find picks the one index.json entry ref names.
func (a *Archive) find(ref name.Reference) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, d := range a.index.Manifests {
		if names(d, ref) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return v1.Descriptor{}, fmt.Errorf("%w: no image %s; the archive holds %s", ErrNotFound, ref, a.imageNames())
	}
	for _, d := range found[1:] {
		if d.Digest != found[0].Digest {
			return v1.Descriptor{}, fmt.Errorf("%w: %s names %d different images; ask for one by digest", ErrNotFound, ref, len(found))
		}
	}
	return found[0], nil
}

// names reports whether an index.json entry answers to ref.
func names(d v1.Descriptor, ref name.Reference) bool {
	if dig, ok := ref.(name.Digest); ok {
		// A digest names an image or the list it was chosen from.
		return d.Digest.String() == dig.DigestStr() || d.Annotations[AnnotationSourceDigest] == dig.DigestStr()
	}
	for _, key := range []string{AnnotationContainerdName, AnnotationRefName} {
		n, err := name.ParseReference(d.Annotations[key])
		if err == nil && n.Name() == ref.Name() {
			return true
		}
	}
	return false
}

func (a *Archive) imageNames() string {
	var out []string
	for _, img := range a.Contents().Images() {
		out = append(out, img.Names...)
	}
	if len(out) == 0 {
		return "no named images"
	}
	return strings.Join(out, ", ")
}

// image builds a v1.Image over a manifest stored in the archive.
func (a *Archive) image(d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an image manifest; use Index", d.Digest, d.MediaType)
	}
	raw, err := a.readBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Digest, err)
	}
	return partial.CompressedToImage(&storedImage{a: a, desc: d, raw: raw, m: m})
}

// dockerImage serves archives without index.json (docker save before 25,
// crane and ggcr tarballs) through go-containerregistry's own reader, over
// this archive's random access.
func (a *Archive) dockerImage(ref name.Reference) (v1.Image, error) {
	tag, ok := ref.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("%w: %s: this archive has no index.json, so images are named by tag only", ErrNotFound, ref)
	}
	opener := func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(a.src, 0, 1<<62)), nil
	}
	img, err := tarball.Image(opener, &tag)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, ref, err)
	}
	return img, nil
}

// storedImage is partial.CompressedImageCore over an archive's blobs.
type storedImage struct {
	a    *Archive
	desc v1.Descriptor
	raw  []byte
	m    *v1.Manifest
}

func (s *storedImage) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *storedImage) MediaType() (types.MediaType, error) { return s.desc.MediaType, nil }
func (s *storedImage) RawConfigFile() ([]byte, error)      { return s.a.readBlob(s.m.Config.Digest) }

// Descriptor keeps the platform index.json gives the image.
func (s *storedImage) Descriptor() (*v1.Descriptor, error) { d := s.desc; return &d, nil }

func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == s.m.Config.Digest {
		return &storedLayer{a: s.a, desc: s.m.Config}, nil
	}
	for _, l := range s.m.Layers {
		if l.Digest == h {
			return &storedLayer{a: s.a, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("%w: layer %s is not in manifest %s", ErrNotFound, h, s.desc.Digest)
}

// storedLayer is a blob of the archive with its descriptor from the manifest.
type storedLayer struct {
	a    *Archive
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storedLayer) Descriptor() (*v1.Descriptor, error) { d := l.desc; return &d, nil }

func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.a.blob(l.desc)
	if err != nil && IsForeign(l.desc) {
		return nil, fmt.Errorf("foreign layer %s was left out of the bundle (its URLs: %v): %w", l.desc.Digest, l.desc.URLs, err)
	}
	return rc, err
}

// BlobAt returns random access to a stored blob's bytes, unchecked, and its
// size: for range reads of a blob whose digest was checked once.
func (a *Archive) BlobAt(h v1.Hash) (io.ReaderAt, int64, error) {
	e, err := a.resolve(BlobPath(h))
	if err != nil {
		return nil, 0, err
	}
	return io.NewSectionReader(a.src, e.DataOffset, e.Size()), e.Size(), nil
}

// BlobSection returns a stored blob's bytes, unchecked, and its size: for
// reads of a blob whose digest was checked once. Reading forward streams
// the frames of a zstd bundle that hold the blob rather than decoding each
// frame whole; Seek is free, and the next Read starts at the frame holding
// the new position. Close releases the decoder. A section is for one
// goroutine at a time.
func (a *Archive) BlobSection(h v1.Hash) (io.ReadSeekCloser, int64, error) {
	e, err := a.resolve(BlobPath(h))
	if err != nil {
		return nil, 0, err
	}
	return a.src.section(e.DataOffset, e.Size()), e.Size(), nil
}

// BlobOffset returns where a stored blob's bytes start in the archive's
// tar stream, and its size. An archive that is not Seekable decompresses
// forward only, so reading its blobs in ascending offset order costs one
// pass over it, while reading them in any other order starts again from
// the beginning for every blob that lies behind the one read before.
func (a *Archive) BlobOffset(h v1.Hash) (offset, size int64, err error) {
	e, err := a.resolve(BlobPath(h))
	if err != nil {
		return 0, 0, err
	}
	return e.DataOffset, e.Size(), nil
}
