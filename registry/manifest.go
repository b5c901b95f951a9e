package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/registry/platform"
)

var (
	// ErrNotIndex is returned when a reference names a single image where a
	// manifest list or OCI index is expected.
	ErrNotIndex = errors.New("not a manifest list or index")
	// ErrMixedMediaTypes is returned when the children of a list to create
	// are a mix of Docker and OCI manifests and no format was chosen.
	ErrMixedMediaTypes = errors.New("mixed Docker and OCI manifests")
	// ErrDuplicatePlatform is returned when two children of a list to
	// create are for the same platform, which pullers cannot choose between.
	ErrDuplicatePlatform = errors.New("duplicate platform")
	// ErrMissingChild is returned when the registry refuses a list because
	// it does not hold one of the children (MANIFEST_BLOB_UNKNOWN).
	ErrMissingChild = errors.New("child manifest missing from the target repository")
)

// IndexFormat is the media type family of a list to create.
type IndexFormat string

const (
	// IndexFormatAuto follows the children: a Docker manifest list for
	// Docker manifests, an OCI index for OCI ones.
	IndexFormatAuto IndexFormat = ""
	// IndexFormatDocker is application/vnd.docker.distribution.manifest.list.v2+json.
	IndexFormatDocker IndexFormat = "docker"
	// IndexFormatOCI is application/vnd.oci.image.index.v1+json.
	IndexFormatOCI IndexFormat = "oci"
)

// ParseIndexFormat accepts "docker", "oci", or "" / "auto".
func ParseIndexFormat(s string) (IndexFormat, error) {
	switch s {
	case "", "auto":
		return IndexFormatAuto, nil
	case "docker", "oci":
		return IndexFormat(s), nil
	}
	return "", fmt.Errorf("%w: list format %q: use docker or oci", ErrInvalidArgument, s)
}

// CreateOption configures CreateIndex. An option given a value that cannot
// work makes CreateIndex return an error before anything is fetched.
type CreateOption func(*createOptions) error

type createOptions struct {
	format    IndexFormat
	platforms []platform.Target
	nondist   bool
	dryRun    bool
}

// WithIndexFormat chooses the list's media type instead of following the
// children's. Choosing one is also how children of mixed types are allowed.
func WithIndexFormat(f IndexFormat) CreateOption {
	return func(o *createOptions) error {
		if _, err := ParseIndexFormat(string(f)); err != nil {
			return err
		}
		o.format = f
		return nil
	}
}

// WithIndexPlatforms keeps, from sources that are themselves lists, only the
// child that best fits each target (Windows by build, highest revision).
// Sources that are single images are always kept: they were named on purpose.
func WithIndexPlatforms(ts ...platform.Target) CreateOption {
	return func(o *createOptions) error { o.platforms = append(o.platforms, ts...); return nil }
}

// WithIndexNondistributable also copies foreign (non-distributable) layers
// into the target repository. Off by default, as their licenses usually
// forbid redistribution and pullers fetch them from their URLs.
func WithIndexNondistributable(allow bool) CreateOption {
	return func(o *createOptions) error { o.nondist = allow; return nil }
}

// WithIndexDryRun builds the list, digest included, but pushes nothing.
func WithIndexDryRun(dry bool) CreateOption {
	return func(o *createOptions) error { o.dryRun = dry; return nil }
}

// ManifestList is a Docker manifest list or OCI index as it is (or would be)
// stored in a registry.
type ManifestList struct {
	// Reference is the list's reference as given.
	Reference string          `json:"reference"`
	Digest    v1.Hash         `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	Size      int64           `json:"size"`
	// Manifests are the entries in list order.
	Manifests []v1.Descriptor `json:"manifests"`
	// DMap is the digest-to-tags line of a promotion file (the dmap of a
	// Kubernetes images.yaml), so a release can pin what was published.
	DMap map[string][]string `json:"dmap"`
	// Raw is the exact manifest bytes the digest is computed over.
	Raw []byte `json:"-"`
}

// newManifestList describes raw, which must be a list or index.
func newManifestList(ref name.Reference, raw []byte, mt types.MediaType) (*ManifestList, error) {
	if !mt.IsIndex() {
		return nil, fmt.Errorf("%s: %w (media type %s)", ref, ErrNotIndex, mt)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing list: %w", ref, err)
	}
	digest, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	tags := []string{}
	if tag, ok := tagOf(ref); ok {
		tags = append(tags, tag)
	}
	return &ManifestList{
		Reference: ref.String(),
		Digest:    digest,
		MediaType: mt,
		Size:      size,
		Manifests: idx.Manifests,
		DMap:      map[string][]string{digest.String(): tags},
		Raw:       raw,
	}, nil
}

// CreatedIndex is the outcome of CreateIndex.
type CreatedIndex struct {
	ManifestList
	// Sources[i] is the reference Manifests[i] was copied from.
	Sources []string `json:"sources"`
	// Pushed is false for a dry run.
	Pushed bool `json:"pushed"`
}

// CreateIndex builds a manifest list at target from sources: images, whose
// config gives their platform, and lists, which contribute their children.
// Children are copied into target's repository first (by cross-repository
// mount where the registry allows), since registries refuse a list whose
// children they do not hold. It refuses two children for one platform, and
// Docker and OCI children mixed unless a format is chosen.
func (c *Client) CreateIndex(ctx context.Context, target string, sources []string, opts ...CreateOption) (*CreatedIndex, error) {
	var o createOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	ref, err := c.ParseReference(target)
	if err != nil {
		return nil, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("%w: %q: the list needs a tag to be pushed to", ErrBadReference, target)
	}
	if len(sources) == 0 {
		return nil, errors.New("no source images for the list")
	}
	children, err := c.collectChildren(ctx, sources, o.platforms)
	if err != nil {
		return nil, err
	}
	if children, err = dedupeChildren(children, c.warnf); err != nil {
		return nil, err
	}
	mt, err := listMediaType(o.format, children, c.warnf)
	if err != nil {
		return nil, err
	}
	created, err := buildList(tag, mt, children)
	if err != nil {
		return nil, err
	}
	if o.dryRun {
		return created, nil
	}
	if err := c.pushList(ctx, tag, created, children, o.nondist); err != nil {
		return nil, err
	}
	created.Pushed = true
	return created, nil
}

// buildList writes the list JSON itself, rather than through mutate, so
// the entries keep the sources' order and only the fields set here.
func buildList(tag name.Tag, mt types.MediaType, children []indexChild) (*CreatedIndex, error) {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: mt}
	var sources []string
	for _, ch := range children {
		idx.Manifests = append(idx.Manifests, ch.desc)
		sources = append(sources, ch.source)
	}
	// Three-space indents, as docker manifest push writes them.
	raw, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return nil, err
	}
	list, err := newManifestList(tag, raw, mt)
	if err != nil {
		return nil, err
	}
	return &CreatedIndex{ManifestList: *list, Sources: sources}, nil
}

// listMediaType picks the list's media type; see IndexFormat.
func listMediaType(f IndexFormat, children []indexChild, warnf func(string, ...any)) (types.MediaType, error) {
	var docker, oci int
	for _, ch := range children {
		if ch.desc.MediaType == types.OCIManifestSchema1 {
			oci++
		} else {
			docker++
		}
	}
	switch {
	case f == IndexFormatDocker:
		if oci > 0 {
			warnf("a Docker manifest list with %d OCI manifests in it, as asked", oci)
		}
		return types.DockerManifestList, nil
	case f == IndexFormatOCI:
		if docker > 0 {
			warnf("an OCI index with %d Docker manifests in it, as asked", docker)
		}
		return types.OCIImageIndex, nil
	case docker > 0 && oci > 0:
		return "", fmt.Errorf("%w: %d Docker and %d OCI; choose a format (docker or oci) to mix them", ErrMixedMediaTypes, docker, oci)
	case oci > 0:
		return types.OCIImageIndex, nil
	}
	return types.DockerManifestList, nil
}

// pushList copies the children into the list's repository, then puts the
// list itself. One Pusher shares the token and the per-digest dedupe.
func (c *Client) pushList(ctx context.Context, tag name.Tag, list *CreatedIndex, children []indexChild, nondist bool) error {
	opts := c.Remote(ctx)
	if nondist {
		opts = append(opts, remote.WithNondistributable)
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return err
	}
	for _, ch := range children {
		dst := tag.Context().Digest(ch.desc.Digest.String())
		if err := c.retryTransfer(ctx, func() error { return pusher.Push(ctx, dst, ch.img) }); err != nil {
			return fmt.Errorf("copying %s to %s: %w", ch.source, tag.Context(), explain(err))
		}
	}
	if err := c.retryTransfer(ctx, func() error { return pusher.Put(ctx, tag, rawManifest{raw: list.Raw, mt: list.MediaType}) }); err != nil {
		if hasErrorCode(err, transport.ManifestBlobUnknownErrorCode) {
			return fmt.Errorf("pushing %s: %w: %w", tag, ErrMissingChild, err)
		}
		return fmt.Errorf("pushing %s: %w", tag, err)
	}
	return nil
}

// rawManifest puts exact bytes, so the digest printed is the one stored.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// InspectIndex fetches a list or index and describes its entries.
func (c *Client) InspectIndex(ctx context.Context, ref string) (*ManifestList, error) {
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	desc, err := c.get(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	return newManifestList(r, desc.Manifest, desc.MediaType)
}

// PromotionLine is the list's digest line for a promotion file's dmap,
// `"sha256:…": ["v1.31.2"]`, ready to paste.
func (l *ManifestList) PromotionLine() string {
	tags := l.DMap[l.Digest.String()]
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(tags)
	return fmt.Sprintf("%q: %s", l.Digest.String(), strings.ReplaceAll(string(b), ",", ", "))
}
