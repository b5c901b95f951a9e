package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/rancher/ferry/registry/platform"
)

// indexChild is one entry of a list being created.
type indexChild struct {
	// source is where the child lives: the reference given, or
	// repo@digest for a child of a source list.
	source string
	// desc has the child's digest, size and media type as served, and the
	// platform from its config.
	desc v1.Descriptor
	img  v1.Image
}

// collectChildren resolves every source, in order, into list entries.
func (c *Client) collectChildren(ctx context.Context, sources []string, filter []platform.Target) ([]indexChild, error) {
	puller, err := remote.NewPuller(c.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	opts := append(c.Remote(ctx), remote.Reuse(puller))
	var out []indexChild
	matched := make([]bool, len(filter))
	for _, src := range sources {
		r, err := c.ParseReference(src)
		if err != nil {
			return nil, err
		}
		desc, err := c.get(ctx, r, opts...)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", src, err)
		}
		switch {
		case desc.MediaType.IsIndex():
			kids, err := c.listChildren(ctx, r, desc, opts)
			if err != nil {
				return nil, err
			}
			out = append(out, filterChildren(kids, filter, matched, c.warnf)...)
		case desc.MediaType.IsImage():
			ch, err := c.imageChild(ctx, src, desc)
			if err != nil {
				return nil, err
			}
			out = append(out, ch)
		default:
			return nil, fmt.Errorf("%s: %w: media type %s", src, ErrUnsupportedManifest, desc.MediaType)
		}
	}
	for i, t := range filter {
		if !matched[i] {
			return nil, fmt.Errorf("%w for %s in any source list", ErrNoMatchingPlatform, t)
		}
	}
	return out, nil
}

// imageChild takes the platform from the config, which is what runtimes
// check, rather than from any list entry that named the image.
func (c *Client) imageChild(ctx context.Context, src string, desc *remote.Descriptor) (indexChild, error) {
	img, err := desc.Image()
	if err != nil {
		return indexChild{}, fmt.Errorf("%s: %w", src, err)
	}
	_, raw, err := c.configOf(ctx, src, img, desc.Manifest)
	if err != nil {
		return indexChild{}, fmt.Errorf("%s: fetching config: %w", src, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return indexChild{}, fmt.Errorf("%s: parsing config: %w", src, err)
	}
	p := configPlatform(cf)
	if p.OS == "" || p.Architecture == "" {
		return indexChild{}, fmt.Errorf("%s: config has no os or architecture", src)
	}
	d := v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest, Platform: &p}
	return indexChild{source: src, desc: d, img: img}, nil
}

// listChildren fetches the image children of a source list, configs
// included, in parallel. Attestations and nested lists are skipped: they
// are not images a runtime can pick by platform.
func (c *Client) listChildren(ctx context.Context, r name.Reference, desc *remote.Descriptor, opts []remote.Option) ([]indexChild, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: parsing list: %w", r, err)
	}
	var wanted []v1.Descriptor
	for _, d := range idx.Manifests {
		if !d.MediaType.IsImage() || isAttestation(d) {
			c.warnf("%s: skipping entry %s (%s%s)", r, d.Digest, d.MediaType, platformSuffix(d.Platform))
			continue
		}
		wanted = append(wanted, d)
	}
	out := make([]indexChild, len(wanted))
	opts = slices.Clip(opts) // each goroutine appends its own context
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.jobs)
	for i, d := range wanted {
		g.Go(func() error {
			src := r.Context().Digest(d.Digest.String()).String()
			got, err := c.get(gctx, r.Context().Digest(d.Digest.String()), append(opts, remote.WithContext(gctx))...)
			if err != nil {
				return fmt.Errorf("fetching %s: %w", src, err)
			}
			out[i], err = c.imageChild(gctx, src, got)
			return err
		})
	}
	return out, g.Wait()
}

func isAttestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform != nil && d.Platform.OS == "unknown")
}

func platformSuffix(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	return ", " + p.String()
}

// filterChildren keeps, for each target, the child bundle selection would
// pick, so one --platform gives one entry even when a list carries several
// revisions of a Windows build. matched records which targets were found.
func filterChildren(kids []indexChild, filter []platform.Target, matched []bool, warnf func(string, ...any)) []indexChild {
	if len(filter) == 0 {
		return kids
	}
	idx := &v1.IndexManifest{}
	for _, k := range kids {
		idx.Manifests = append(idx.Manifests, k.desc)
	}
	var out []indexChild
	seen := map[v1.Hash]bool{}
	for i, t := range filter {
		d, sel := platform.Select(idx, t)
		if sel == platform.NoMatch {
			continue
		}
		if sel == platform.MatchNoOSVersion {
			warnf("%s: no os.version in its config; taking it for %s", d.Digest, t)
		}
		matched[i] = true
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		for _, k := range kids {
			if k.desc.Digest == d.Digest {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// dedupeChildren drops repeats of one image (named by tag and inside a
// source list, say) and refuses two images for one platform.
func dedupeChildren(kids []indexChild, warnf func(string, ...any)) ([]indexChild, error) {
	byKey := map[string]indexChild{}
	var out []indexChild
	var dups []string
	for _, k := range kids {
		key := platformKey(k.desc.Platform)
		prev, ok := byKey[key]
		switch {
		case !ok:
			byKey[key] = k
			out = append(out, k)
		case prev.desc.Digest == k.desc.Digest:
			warnf("%s is %s again; listing it once", k.source, prev.source)
		default:
			dups = append(dups, fmt.Sprintf("%s from %s and %s", k.desc.Platform.String(), prev.source, k.source))
		}
	}
	if len(dups) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDuplicatePlatform, strings.Join(dups, "; "))
	}
	return out, nil
}

// platformKey is what makes two entries the same platform to a puller:
// os, architecture, variant and, for Windows, the build (not the revision).
func platformKey(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	version := p.OSVersion
	if b, ok := platform.BuildOf(version); ok {
		version = b
	}
	return p.OS + "/" + p.Architecture + "/" + platform.NormalVariant(*p) + ":" + version
}

// hasErrorCode reports whether err is a registry error carrying code.
func hasErrorCode(err error, codes ...transport.ErrorCode) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}
