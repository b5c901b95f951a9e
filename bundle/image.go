package bundle

import (
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is one image to store in a bundle: its manifest and config exactly
// as the registry served them, so digests survive the air gap.
type Image struct {
	// Name is registry/repository:tag as loaders should tag it, or
	// registry/repository@digest when only a digest is known.
	Name string
	// Tag is the tag part of Name, "" for digest-only references.
	Tag string
	// Descriptor describes Manifest: digest, size, media type and platform.
	Descriptor v1.Descriptor
	Manifest   []byte
	Config     []byte
	// SourceIndex is the manifest list or OCI index the image was chosen
	// from, nil for an image that was not. Write stores it byte for byte
	// with the metadata and names it from the image's index.json entry, so
	// a repo:tag@<list digest> pin can be checked offline.
	SourceIndex *RawIndex
}

// RawIndex is a manifest list or OCI image index exactly as served.
type RawIndex struct {
	// Descriptor describes Manifest: digest, size and media type.
	Descriptor v1.Descriptor
	Manifest   []byte
}

// Parsed returns the image manifest, checking it is one (not an index).
func (img *Image) Parsed() (*v1.Manifest, error) {
	if !types.MediaType(img.Descriptor.MediaType).IsImage() {
		return nil, fmt.Errorf("%s: media type %s is not an image manifest", img.Name, img.Descriptor.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(img.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing manifest: %w", img.Name, err)
	}
	return m, nil
}

// Blobs opens layer blobs by digest. Open may block until the blob is
// available, which lets writing overlap with fetching.
type Blobs interface {
	Open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
}

// IsForeign reports whether a layer is non-distributable (Windows base layers).
func IsForeign(d v1.Descriptor) bool {
	return !d.MediaType.IsDistributable()
}
