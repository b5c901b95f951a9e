package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/rancher/ferry/bundle"
)

// Fetcher downloads the distinct layers of resolved images into a Cache,
// several at a time, and serves them to bundle.Write as they arrive, so
// writing a bundle overlaps with fetching its layers. Each distinct blob is
// fetched at most once, however many images and bundles share it.
type Fetcher struct {
	client   *Client
	cache    *Cache
	progress io.Writer

	mu     sync.Mutex
	blobs  map[v1.Hash]*pending
	order  []*pending
	total  int64
	copied atomic.Int64
}

type pending struct {
	desc   v1.Descriptor
	source *Resolved
	done   chan struct{}
	err    error
	// cached is true for blobs found in the cache, not fetched this run:
	// those are hashed again as they are read.
	cached bool
}

// NewFetcher prepares a fetch into cache. progress, if not nil, receives a
// count of every byte downloaded (a progress bar is an io.Writer).
func (c *Client) NewFetcher(cache *Cache, progress io.Writer) *Fetcher {
	if progress == nil {
		progress = io.Discard
	}
	return &Fetcher{client: c, cache: cache, progress: progress, blobs: map[v1.Hash]*pending{}}
}

// Add queues the layers of images not already cached, in order, so the
// first bundle's layers arrive first. It returns the bytes still to fetch.
func (f *Fetcher) Add(images []*Resolved, skipForeign bool) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range images {
		m, err := img.Parsed()
		if err != nil {
			return 0, err
		}
		for _, l := range m.Layers {
			if (skipForeign && bundle.IsForeign(l)) || f.blobs[l.Digest] != nil {
				continue
			}
			p := &pending{desc: l, source: img, done: make(chan struct{})}
			f.blobs[l.Digest] = p
			if f.cache.Has(l) {
				p.cached = true
				close(p.done)
				continue
			}
			f.order = append(f.order, p)
			f.total += l.Size
		}
	}
	return f.total, nil
}

// Run fetches everything queued, jobs at a time, until done or the first
// error. Open calls made meanwhile wait for their blob.
func (f *Fetcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(f.client.opts.jobs)
	for _, p := range f.order {
		p := p
		g.Go(func() error {
			p.err = f.fetch(ctx, p)
			close(p.done)
			return p.err
		})
	}
	return g.Wait()
}

// Fetched is the number of bytes downloaded so far.
func (f *Fetcher) Fetched() int64 { return f.copied.Load() }

func (f *Fetcher) fetch(ctx context.Context, p *pending) error {
	err := retryTransfer(ctx, func() error { return f.fetchOnce(p) })
	if err != nil {
		return fmt.Errorf("fetching layer %s of %s: %w", p.desc.Digest, p.source.Source, err)
	}
	return nil
}

func (f *Fetcher) fetchOnce(p *pending) error {
	layer, err := p.source.remote.LayerByDigest(p.desc.Digest)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return f.cache.Put(p.desc, io.TeeReader(rc, countingWriter{f}))
}

type countingWriter struct{ f *Fetcher }

func (c countingWriter) Write(b []byte) (int, error) {
	c.f.copied.Add(int64(len(b)))
	c.f.progress.Write(b)
	return len(b), nil
}

// Open implements bundle.Blobs: it waits until d is in the cache. Blobs
// fetched this run were verified on download; older cache entries are
// verified as they are read, and dropped from the cache if they fail, so a
// rerun fetches them again. Hence bundle.WithBlobsVerified.
func (f *Fetcher) Open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	f.mu.Lock()
	p := f.blobs[d.Digest]
	f.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("blob %s was never queued for fetching", d.Digest)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	rc, err := f.cache.Open(d)
	if err != nil || !p.cached {
		return rc, err
	}
	return &evictOnMismatch{ReadCloser: bundle.VerifyingReader(rc, d), cache: f.cache, digest: d.Digest}, nil
}

type evictOnMismatch struct {
	io.ReadCloser
	cache  *Cache
	digest v1.Hash
}

func (e *evictOnMismatch) Read(p []byte) (int, error) {
	n, err := e.ReadCloser.Read(p)
	if errors.Is(err, bundle.ErrDigestMismatch) || errors.Is(err, bundle.ErrSizeMismatch) {
		_ = e.cache.Remove(e.digest)
		err = fmt.Errorf("%w; removed the corrupt entry from the blob cache, run again to fetch it", err)
	}
	return n, err
}
