package registry

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

// Resolved is an image chosen for a target: what goes into the bundle, and
// the remote handle its layers are fetched through.
type Resolved struct {
	bundle.Image
	// Source is the reference as the user wrote it.
	Source string
	// Repository is where the blobs live.
	Repository name.Repository
	// urls is the image's remote handle when a layer lists URLs (a Windows
	// base layer), so that the fetch can try them; nil otherwise, because
	// a bundle keeps every image it holds until it is written, and the
	// handle keeps what resolving fetched.
	urls v1.Image
	// resolved marks an image made by Resolve, the only kind a Fetcher takes.
	resolved bool
}

// Resolve fetches ref's manifest for t, choosing among an index's children
// by platform and Windows build, and its config. Layers are not fetched.
func (c *Client) Resolve(ctx context.Context, ref string, t platform.Target) (*Resolved, error) {
	out, errs := c.resolveTargets(ctx, ref, []platform.Target{t}, nil)
	return out[0], errs[0]
}

// resolveTargets resolves one reference for several targets, fetching the
// top manifest once and each child manifest and config once, however many
// targets share them (a FROM-scratch image serves every Windows version).
func (c *Client) resolveTargets(ctx context.Context, ref string, targets []platform.Target, early func(*Resolved)) ([]*Resolved, []error) {
	out, errs := make([]*Resolved, len(targets)), make([]error, len(targets))
	fail := func(err error) ([]*Resolved, []error) {
		for i := range errs {
			errs[i] = err
		}
		return out, errs
	}
	r, err := c.ParseReference(ref)
	if err != nil {
		return fail(err)
	}
	top, err := c.get(ctx, r)
	if err != nil {
		return fail(fmt.Errorf("fetching %s: %w", ref, err))
	}
	memo := resolveMemo{children: map[v1.Hash]*remote.Descriptor{}, configs: map[v1.Hash][]byte{}}
	if top.MediaType.IsIndex() {
		d := top.Descriptor
		memo.source = &bundle.RawIndex{
			Descriptor: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest},
			Manifest:   top.Manifest,
		}
	}
	for i, t := range targets {
		desc := top
		if top.MediaType.IsIndex() {
			desc, err = c.resolveChild(ctx, r, top, t, &memo)
		} else if !isImageManifest(string(top.MediaType)) {
			err = fmt.Errorf("%s: %w: media type %s", ref, ErrUnsupportedManifest, top.MediaType)
		}
		if err == nil {
			out[i], err = c.resolveImage(ctx, ref, r, desc, t, &memo, early)
		}
		errs[i] = err
	}
	return out, errs
}

// resolveMemo remembers what one reference's targets have in common.
type resolveMemo struct {
	children map[v1.Hash]*remote.Descriptor
	configs  map[v1.Hash][]byte
	// source is the index the images are chosen from, kept byte for byte
	// so the bundle can prove a repo:tag@<list digest> pin offline.
	source *bundle.RawIndex
}

func (c *Client) resolveChild(ctx context.Context, r name.Reference, desc *remote.Descriptor, t platform.Target, memo *resolveMemo) (*remote.Descriptor, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing index: %w", r, err)
	}
	child, sel := platform.Select(idx, t)
	if sel == platform.NoMatch {
		return nil, fmt.Errorf("%s: %w for %s; it has %s", r, ErrNoMatchingPlatform, t, platform.Describe(idx))
	}
	if sel == platform.MatchNoOSVersion {
		c.warnf("%s: no os.version on the %s entry; taking it for %s", r, child.Platform.String(), t)
	}
	if got, ok := memo.children[child.Digest]; ok {
		return got, nil
	}
	got, err := c.get(ctx, r.Context().Digest(child.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetching %s for %s: %w", r, t, err)
	}
	got.Descriptor.Platform = child.Platform
	memo.children[child.Digest] = got
	return got, nil
}

// resolveImage fetches the config and checks the image really is for t:
// an index entry can lie, and a single-platform image has only its config.
func (c *Client) resolveImage(ctx context.Context, src string, r name.Reference, desc *remote.Descriptor, t platform.Target, memo *resolveMemo, early func(*Resolved)) (*Resolved, error) {
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	mf, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing manifest: %w", src, err)
	}
	var urls v1.Image
	if slices.ContainsFunc(mf.Layers, func(l v1.Descriptor) bool { return len(l.URLs) > 0 }) {
		urls = img
	}
	named, tag := bundle.RefName(r)
	resolved := func(d v1.Descriptor, config []byte) *Resolved {
		return &Resolved{
			Image:      bundle.Image{Name: named, Tag: tag, Descriptor: d, Manifest: desc.Manifest, Config: config, SourceIndex: memo.source},
			Source:     src,
			Repository: r.Context(),
			urls:       urls,
			resolved:   true,
		}
	}
	if early != nil {
		// The manifest names the layers: their fetch can start while the
		// config is fetched and checked.
		early(resolved(desc.Descriptor, nil))
	}
	config, err := c.config(ctx, memo, src, img, mf.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: fetching config: %w", src, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing config: %w", src, err)
	}
	p := configPlatform(cf)
	switch t.Match(p) {
	case platform.NoMatch:
		return nil, fmt.Errorf("%s: %w for %s; the image is %s", src, ErrNoMatchingPlatform, t, p.String())
	case platform.MatchNoOSVersion:
		if desc.Descriptor.Platform == nil || desc.Descriptor.Platform.OSVersion == "" {
			c.warnf("%s: image has no os.version; taking it for %s", src, t)
		}
	}
	d := desc.Descriptor
	if d.Platform == nil {
		d.Platform = &p
	}
	return resolved(d, config), nil
}

// config fetches the config d describes once per digest (see configBlob).
func (c *Client) config(ctx context.Context, m *resolveMemo, src string, img v1.Image, d v1.Descriptor) ([]byte, error) {
	if cfg, ok := m.configs[d.Digest]; ok {
		return cfg, nil
	}
	cfg, err := c.configBlob(ctx, src, img, d)
	if err == nil {
		m.configs[d.Digest] = cfg
	}
	return cfg, err
}

// configPlatform is the platform a config declares; the zero Platform
// (which matches nothing) when it declares none.
func configPlatform(cf *v1.ConfigFile) v1.Platform {
	if p := cf.Platform(); p != nil {
		return *p
	}
	return v1.Platform{}
}

// tagOf finds the tag in repo:tag and in repo:tag@sha256:… alike.
func tagOf(r name.Reference) (string, bool) {
	if t, ok := r.(name.Tag); ok {
		return t.TagStr(), true
	}
	s := r.String()
	base, _, _ := strings.Cut(s, "@")
	if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
		return base[i+1:], true
	}
	return "", false
}

func isImageManifest(mt string) bool {
	return types.MediaType(mt).IsImage()
}
