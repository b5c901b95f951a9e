package registry

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

// PullOption configures Pull and WriteBundles. An option given a value that
// cannot work makes them return an error before anything is fetched.
type PullOption func(*pullOptions) error

type pullOptions struct {
	skipForeign bool
	progress    Progress
	// WriteBundles only.
	cache       *Cache
	compression bundle.Compression
	level       int
	written     func(path string, images int)
	result      func(BundleResult)
}

func makePullOptions(opts []PullOption) (pullOptions, error) {
	var o pullOptions
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Progress hears how many layer bytes a Pull has queued and downloaded.
// A progress bar satisfies it.
type Progress interface {
	Write(p []byte) (int, error) // one call per downloaded chunk
	SetTotal(bytes int64)        // the bytes queued so far; grows as images resolve
}

// WithSkipForeign leaves non-distributable layers unfetched, and out of the
// bundles WriteBundles writes.
func WithSkipForeign(skip bool) PullOption {
	return func(o *pullOptions) error { o.skipForeign = skip; return nil }
}

// WithProgress reports download progress; nil reports nothing.
func WithProgress(p Progress) PullOption {
	return func(o *pullOptions) error { o.progress = p; return nil }
}

// WriteFunc writes the bundle for targets[i] from its images (in ref
// order) and blobs, which hands out layers as they arrive.
type WriteFunc func(ctx context.Context, i int, images []bundle.Image, blobs bundle.Blobs) error

// Pull resolves every ref for every target and calls write once per
// target, in order. Layers are fetched into cache from the moment each
// image's manifest is known, each distinct blob once, and write reads them
// while they download. It returns the bytes downloaded.
func (c *Client) Pull(ctx context.Context, refs []string, targets []platform.Target, cache *Cache, write WriteFunc, opts ...PullOption) (int64, error) {
	o, err := makePullOptions(opts)
	if err != nil {
		return 0, err
	}
	if write == nil {
		return 0, fmt.Errorf("%w: Pull needs a write function", ErrInvalidArgument)
	}
	fetcher, err := c.NewFetcher(cache, progressWriter(o.progress))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- fetcher.Run(ctx) }()
	stop := func(err error) (int64, error) {
		cancel()
		<-fetchErr
		return fetcher.Fetched(), err
	}

	var addErr error
	var once sync.Once
	early := func(r *Resolved) {
		if err := fetcher.Add([]*Resolved{r}, o.skipForeign); err != nil {
			once.Do(func() { addErr = err })
		}
		if o.progress != nil {
			o.progress.SetTotal(fetcher.Queued())
		}
	}
	resolved, err := c.ResolveAll(ctx, refs, targets, WhenManifestKnown(early))
	fetcher.Close()
	if err == nil {
		err = addErr
	}
	if err != nil {
		return stop(err)
	}
	// Only what goes into the bundles is kept from here: the remote
	// handles of thousands of images are garbage once their layers are
	// queued (the Fetcher keeps those it still needs).
	images := make([][]bundle.Image, len(targets))
	for i := range targets {
		images[i] = make([]bundle.Image, len(resolved[i]))
		for k, r := range resolved[i] {
			images[i][k] = r.Image
		}
	}
	resolved = nil
	for i := range targets {
		if err := write(ctx, i, images[i], fetcher); err != nil {
			return stop(err)
		}
		images[i] = nil
	}
	err = <-fetchErr
	return fetcher.Fetched(), err
}

// progressWriter keeps a nil Progress a nil io.Writer, not a non-nil
// interface holding nil.
func progressWriter(p Progress) io.Writer {
	if p == nil {
		return nil
	}
	return p
}
