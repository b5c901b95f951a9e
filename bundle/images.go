package bundle

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NamedImage is an image from any go-containerregistry source (remote,
// layout, tarball, random) and the reference loaders should know it by.
type NamedImage struct {
	// Ref names the image: a tag, a digest, or repo:tag@sha256:…, which
	// keeps the tag (see RefName).
	Ref   name.Reference
	Image v1.Image
	// Index, if not nil, is the manifest list or OCI index Image was
	// chosen from; it is stored as Image.SourceIndex, so that a
	// repo:tag@<index digest> pin verifies offline.
	Index v1.ImageIndex
}

// WriteImages writes a bundle of images to w, as Write does: manifests and
// configs byte for byte as the images give them, and each distinct layer
// once, streamed from Layer.Compressed (looked up by digest across all
// images) and checked against its digest and size, so no layer is held in
// memory. The platform stored for each image is the one its config declares.
func WriteImages(ctx context.Context, w io.Writer, images []NamedImage, opts ...Option) error {
	if len(images) == 0 {
		return ErrNoImages
	}
	out := make([]Image, len(images))
	src := imageBlobs{}
	for i, ni := range images {
		img, err := FromImage(ni.Ref, ni.Image)
		if err != nil {
			return err
		}
		if ni.Index != nil {
			if img.SourceIndex, err = rawIndex(ni.Index); err != nil {
				return fmt.Errorf("%s: source index: %w", img.Name, err)
			}
		}
		if err := src.add(&img, ni.Image); err != nil {
			return err
		}
		out[i] = img
	}
	return Write(ctx, w, out, src, opts...)
}

// FromImage reads what a bundle stores of img: its manifest, config and
// platform, named after ref. Layers are not read.
func FromImage(ref name.Reference, img v1.Image) (Image, error) {
	if ref == nil || img == nil {
		return Image{}, fmt.Errorf("%w: an image and its reference", ErrNilArgument)
	}
	n, tag := RefName(ref)
	out := Image{Name: n, Tag: tag}
	var err error
	if out.Manifest, err = img.RawManifest(); err != nil {
		return out, fmt.Errorf("%s: manifest: %w", n, err)
	}
	d := &out.Descriptor
	if d.MediaType, err = img.MediaType(); err != nil {
		return out, fmt.Errorf("%s: media type: %w", n, err)
	}
	if d.Digest, err = img.Digest(); err != nil {
		return out, fmt.Errorf("%s: digest: %w", n, err)
	}
	if d.Size, err = img.Size(); err != nil {
		return out, fmt.Errorf("%s: size: %w", n, err)
	}
	if out.Config, err = img.RawConfigFile(); err != nil {
		return out, fmt.Errorf("%s: config: %w", n, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return out, fmt.Errorf("%s: parsing config: %w", n, err)
	}
	d.Platform = cf.Platform()
	return out, nil
}

func rawIndex(idx v1.ImageIndex) (*RawIndex, error) {
	var (
		out RawIndex
		err error
	)
	d := &out.Descriptor
	if out.Manifest, err = idx.RawManifest(); err != nil {
		return nil, err
	}
	if d.MediaType, err = idx.MediaType(); err != nil {
		return nil, err
	}
	if d.Digest, err = idx.Digest(); err != nil {
		return nil, err
	}
	if d.Size, err = idx.Size(); err != nil {
		return nil, err
	}
	return &out, nil
}

// imageBlobs serves each layer from the first image whose manifest lists it.
type imageBlobs map[v1.Hash]v1.Image

func (b imageBlobs) add(img *Image, src v1.Image) error {
	m, err := img.Parsed()
	if err != nil {
		return err
	}
	for _, l := range m.Layers {
		if _, ok := b[l.Digest]; !ok {
			b[l.Digest] = src
		}
	}
	return nil
}

// Open implements Blobs.
func (b imageBlobs) Open(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	img, ok := b[d.Digest]
	if !ok {
		return nil, fmt.Errorf("layer %s is in no image", d.Digest)
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}
