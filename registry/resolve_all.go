package registry

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"
)

// ResolveAll resolves every ref for every target, several at a time. The
// result is indexed [target][ref]. All failures are reported together, so
// a release engineer fixes an image list in one round.
func (c *Client) ResolveAll(ctx context.Context, refs []string, targets []Target) ([][]*Resolved, error) {
	out := make([][]*Resolved, len(targets))
	errs := make([]error, len(targets)*len(refs))
	var g errgroup.Group
	g.SetLimit(max(c.opts.jobs, 1) * 2)
	for ti, t := range targets {
		out[ti] = make([]*Resolved, len(refs))
		for ri, ref := range refs {
			g.Go(func() error {
				r, err := c.Resolve(ctx, ref, t)
				out[ti][ri], errs[ti*len(refs)+ri] = r, err
				return nil
			})
		}
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
