package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle/catalog"
)

var (
	// ErrTagExists is returned, with OnExistingTagError, when a tag to push
	// already names something else in the registry.
	ErrTagExists = errors.New("tag exists in the registry")
	// ErrForeignLayersRejected is returned when the registry refuses a
	// manifest whose foreign layers carry URLs.
	ErrForeignLayersRejected = errors.New("registry rejects foreign layer URLs")
)

// OnExistingTag says what Push does with a tag the registry already holds
// with other content.
type OnExistingTag string

const (
	// OnExistingTagMerge combines a list already at the tag with the images
	// pushed: entries for other platforms are kept, those for the same
	// platform (Windows: the same build) replaced. When the result is
	// exactly an upstream list the archives carry, that list's own bytes
	// are pushed, so the tag's digest is upstream's.
	OnExistingTagMerge OnExistingTag = "merge"
	// OnExistingTagOverwrite replaces the tag.
	OnExistingTagOverwrite OnExistingTag = "overwrite"
	// OnExistingTagSkip leaves the tag, and pushes nothing for it.
	OnExistingTagSkip OnExistingTag = "skip"
	// OnExistingTagError fails the push before anything is uploaded.
	OnExistingTagError OnExistingTag = "error"
)

// ParseOnExistingTag accepts merge, overwrite, skip or error.
func ParseOnExistingTag(s string) (OnExistingTag, error) {
	switch m := OnExistingTag(s); m {
	case OnExistingTagMerge, OnExistingTagOverwrite, OnExistingTagSkip, OnExistingTagError:
		return m, nil
	}
	return "", fmt.Errorf("%w: on existing tag %q: use merge, overwrite, skip or error", ErrInvalidArgument, s)
}

// PushOption configures Push. An option given a value that cannot work
// makes Push return an error before anything is sent.
type PushOption func(*pushOptions) error

type pushOptions struct {
	onExisting OnExistingTag
	dryRun     bool
	progress   Progress
}

// WithOnExistingTag chooses what happens to tags the registry already
// holds; the default is OnExistingTagMerge.
func WithOnExistingTag(m OnExistingTag) PushOption {
	return func(o *pushOptions) error {
		if _, err := ParseOnExistingTag(string(m)); err != nil {
			return err
		}
		o.onExisting = m
		return nil
	}
}

// WithPushDryRun reads the registry (what exists, what each tag holds) and
// reports what a push would do, but uploads and tags nothing.
func WithPushDryRun(dry bool) PushOption {
	return func(o *pushOptions) error { o.dryRun = dry; return nil }
}

// WithPushProgress reports the bytes of the blobs to push, and bytes as
// they are sent or found already in place; nil reports nothing.
func WithPushProgress(p Progress) PushOption {
	return func(o *pushOptions) error { o.progress = p; return nil }
}

// PushReport is what a Push did, per image reference and in total.
type PushReport struct {
	Images []PushedImage `json:"images"`
	// Blob counts are per destination repository: a blob pushed to two
	// repositories counts twice, once uploaded and once mounted.
	BlobsUploaded int   `json:"blobsUploaded"`
	BlobsMounted  int   `json:"blobsMounted"`
	BlobsExisting int   `json:"blobsExisting"`
	BytesUploaded int64 `json:"bytesUploaded"`
	// DryRun is set when nothing was sent: the counts are what a push
	// would upload, mount or find in place.
	DryRun bool `json:"dryRun,omitempty"`
}

// Action is what Push did to a reference.
type Action string

const (
	ActionPushed      Action = "pushed"      // the reference did not exist
	ActionUnchanged   Action = "unchanged"   // it already held this content
	ActionMerged      Action = "merged"      // a list at the tag was combined with the images pushed
	ActionOverwritten Action = "overwritten" // the tag held something else
	ActionSkipped     Action = "skipped"     // the tag held something else and was left
)

// PushedImage reports one reference: a tag, or an image the archives name
// by digest only.
type PushedImage struct {
	// Source is the name in the archive (docker.io/rancher/x:1).
	Source string `json:"source"`
	// Reference is the destination, a tag or repo@digest.
	Reference string `json:"reference"`
	// Digest is what the reference resolves to once pushed.
	Digest    v1.Hash         `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	Action    Action          `json:"action"`
	Platforms []string        `json:"platforms,omitempty"`
	// Blobs of the images pushed for the reference, by what became of
	// them; a blob shared with an earlier reference of the same
	// repository counts as existing there.
	Blobs         int   `json:"blobs"`
	Uploaded      int   `json:"uploaded"`
	Mounted       int   `json:"mounted"`
	Existing      int   `json:"existing"`
	BytesUploaded int64 `json:"bytesUploaded"`
}

// Push copies every image of cat into the registry at target, which is
// HOST[:PORT] with an optional /PREFIX path put before every repository.
// Manifests, lists and configs go byte for byte with their media types, so
// every digest stays the archive's. Blobs the registry has are not sent, a
// blob already pushed to another repository is mounted from there, and
// uploads stream from the archive, Client jobs at a time. Tags follow
// WithOnExistingTag; images named by digest only are pushed by digest.
// Foreign layers are pushed when the archive carries them.
func (c *Client) Push(ctx context.Context, cat *catalog.Catalog, target string, opts ...PushOption) (*PushReport, error) {
	if cat == nil {
		return nil, fmt.Errorf("%w: nil catalog", ErrInvalidArgument)
	}
	o := pushOptions{onExisting: OnExistingTagMerge}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	t, err := c.parseTarget(target)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(append(c.base(ctx), remote.WithNondistributable)...)
	if err != nil {
		return nil, err
	}
	r := &pushRun{c: c, cat: cat, target: t, o: o, pusher: pusher, blobs: newBlobTracker(c.opts.jobs)}
	return r.run(ctx)
}

// pushTarget is the destination registry and the path put before every
// repository.
type pushTarget struct {
	registry string
	prefix   string
	opts     []name.Option
}

// parseTarget accepts HOST[:PORT][/PREFIX], without a scheme, tag or digest.
func (c *Client) parseTarget(target string) (pushTarget, error) {
	target = strings.TrimSuffix(strings.TrimSpace(target), "/")
	host, prefix, _ := strings.Cut(target, "/")
	if host == "" || strings.Contains(target, "://") || strings.ContainsAny(target, "@ ") {
		return pushTarget{}, fmt.Errorf("%w: registry %q: give HOST[:PORT][/PREFIX]", ErrInvalidArgument, target)
	}
	t := pushTarget{registry: host, prefix: prefix}
	if c.isInsecure(host) {
		t.opts = append(t.opts, name.Insecure)
	}
	r, err := t.repository("x")
	if err != nil {
		return pushTarget{}, fmt.Errorf("%w: registry %q: %w", ErrInvalidArgument, target, err)
	}
	// The registry was named: the dial-time address check leaves it alone.
	c.noteRegistry(r.Registry)
	return t, nil
}

// repository names the destination of a catalog repository.
func (t pushTarget) repository(repo string) (name.Repository, error) {
	if t.prefix != "" {
		repo = t.prefix + "/" + repo
	}
	return name.NewRepository(t.registry+"/"+repo, append([]name.Option{name.StrictValidation}, t.opts...)...)
}
