package registry

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/rancher/ferry/registry/platform"
)

// ResolveOption configures ResolveAll.
type ResolveOption func(*resolveOptions) error

type resolveOptions struct{ early func(*Resolved) }

// WhenManifestKnown calls fn, from several goroutines, as soon as an image's
// manifest is known and before its config is fetched, so that a Fetcher can
// start on the layers. The image passed has no Config yet.
func WhenManifestKnown(fn func(*Resolved)) ResolveOption {
	return func(o *resolveOptions) error { o.early = fn; return nil }
}

// ResolveAll resolves every ref for every target, several refs at a time.
// The result is indexed [target][ref]. All failures are reported together,
// so a release engineer fixes an image list in one round.
func (c *Client) ResolveAll(ctx context.Context, refs []string, targets []platform.Target, opts ...ResolveOption) ([][]*Resolved, error) {
	var o resolveOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	out := make([][]*Resolved, len(targets))
	for ti := range targets {
		out[ti] = make([]*Resolved, len(refs))
	}
	errs := make([][]error, len(refs))
	var g errgroup.Group
	// Resolving is a few small requests in turn: latency, not bandwidth.
	g.SetLimit(max(c.opts.jobs, 1) * 4)
	for ri, ref := range refs {
		g.Go(func() error {
			resolved, rerrs := c.resolveTargets(ctx, ref, targets, o.early)
			for ti := range targets {
				out[ti][ri] = resolved[ti]
			}
			errs[ri] = rerrs
			return nil
		})
	}
	_ = g.Wait()
	var all []error
	for _, e := range errs {
		all = append(all, dedupeErrors(e)...)
	}
	if err := errors.Join(all...); err != nil {
		return nil, err
	}
	return out, nil
}

// dedupeErrors drops repeats: a missing image fails every target alike.
func dedupeErrors(errs []error) []error {
	var out []error
	seen := map[string]bool{}
	for _, e := range errs {
		if e != nil && !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}
