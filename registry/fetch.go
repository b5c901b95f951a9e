package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	closed bool // under mu: Add after Close would send on a closed queue
	queue  chan *pending
	total  atomic.Int64
	copied atomic.Int64
	// dead is closed with err set on the first failed fetch.
	dead     chan struct{}
	deadOnce sync.Once
	err      error
}

// maxQueued bounds blobs queued and not yet fetched; image lists hold
// hundreds of layers, not tens of thousands.
const maxQueued = 1 << 16

type pending struct {
	desc v1.Descriptor
	// repo is where the layer is fetched from, through the client's
	// Puller, which authenticates once per repository; source names the
	// image in errors. Not the image's remote handle: thousands of layers
	// may wait their turn, and the handles hold what resolving fetched.
	// Only a layer with URLs keeps it (from), to try those too.
	repo   name.Repository
	from   v1.Image
	source string
	// started is closed once file is set: the download has a temp file
	// that readers can follow.
	started chan struct{}
	file    *growingFile
	// cached is true for blobs found in the cache, not fetched this run:
	// those are hashed again as they are read.
	cached bool
}

// NewFetcher prepares a fetch into cache, which it needs. progress, if not
// nil, receives a count of every byte downloaded (a progress bar is an
// io.Writer).
func (c *Client) NewFetcher(cache *Cache, progress io.Writer) (*Fetcher, error) {
	if cache == nil {
		return nil, fmt.Errorf("%w: a Fetcher needs a blob cache", ErrInvalidArgument)
	}
	if progress == nil {
		progress = io.Discard
	}
	return &Fetcher{client: c, cache: cache, progress: progress, blobs: map[v1.Hash]*pending{}, queue: make(chan *pending, maxQueued), dead: make(chan struct{})}, nil
}

// ErrFetcherClosed is returned by Add after Close.
var ErrFetcherClosed = errors.New("fetcher closed")

// Add queues the layers of images not already cached, in order, so the
// first bundle's layers arrive first. It may be called while Run runs, as
// images resolve; Queued tells how much is queued so far.
func (f *Fetcher) Add(images []*Resolved, skipForeign bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrFetcherClosed
	}
	for _, img := range images {
		if img == nil || !img.resolved {
			return fmt.Errorf("%w: an image not from Resolve", ErrInvalidArgument)
		}
		m, err := img.Parsed()
		if err != nil {
			return err
		}
		for _, l := range m.Layers {
			if (skipForeign && bundle.IsForeign(l)) || f.blobs[l.Digest] != nil {
				continue
			}
			p := &pending{desc: l, repo: img.Repository, source: img.Source, started: make(chan struct{})}
			if len(l.URLs) > 0 {
				p.from = img.urls
			}
			f.blobs[l.Digest] = p
			if f.cache.Has(l) {
				p.cached = true
				p.file = newGrowingFile(f.cache.path(l.Digest))
				p.file.wrote(l.Size)
				p.file.finish(nil, nil)
				close(p.started)
				continue
			}
			f.queue <- p
			f.total.Add(l.Size)
		}
	}
	return nil
}

// Queued is the number of bytes queued for fetching so far.
func (f *Fetcher) Queued() int64 { return f.total.Load() }

// Close says nothing more will be added; Run returns once all is fetched.
// Closing again does nothing.
func (f *Fetcher) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.queue)
	}
}

// Run fetches what is queued, jobs at a time, until Close and an empty
// queue, or the first error. Open calls made meanwhile wait for their blob.
func (f *Fetcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for range max(f.client.opts.jobs, 1) {
		g.Go(func() error {
			for p := range f.queue {
				if err := f.fetch(ctx, p); err != nil {
					f.fail(err)
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// fail records the first error; readers waiting for a blob that will now
// never be fetched get it instead of waiting forever.
func (f *Fetcher) fail(err error) {
	f.deadOnce.Do(func() {
		f.err = err
		close(f.dead)
	})
}

// Fetched is the number of bytes downloaded so far.
func (f *Fetcher) Fetched() int64 { return f.copied.Load() }

func (f *Fetcher) fetch(ctx context.Context, p *pending) error {
	tmp, err := f.cache.create(p.desc)
	if err != nil {
		p.file = newGrowingFile("")
		p.file.finish(err, nil)
		close(p.started)
		return err
	}
	p.file = newGrowingFile(tmp.Name())
	close(p.started)
	err = explain(f.client.retryTransfer(ctx, func() error { return f.fetchOnce(ctx, p, tmp) }))
	p.from = nil // the image's handle is not needed once its layer is here
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("fetching layer %s of %s: %w", p.desc.Digest, p.source, err)
		os.Remove(tmp.Name())
		p.file.finish(err, nil)
		return err
	}
	p.file.finish(nil, func() (string, error) { return f.cache.commit(tmp.Name(), p.desc) })
	return nil
}

// fetchOnce downloads the blob into tmp from the start. go-containerregistry
// verifies the digest at EOF, which is when the size is checked too.
func (f *Fetcher) fetchOnce(ctx context.Context, p *pending, tmp *os.File) error {
	layer, err := f.layer(ctx, p)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	w := &publishingWriter{f: tmp, g: p.file, progress: countingWriter{f}}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// One byte more than expected is enough to refuse a body that runs on.
	n, err := io.CopyBuffer(w, io.LimitReader(rc, p.desc.Size+1), *buf)
	if err == nil && n != p.desc.Size {
		err = fmt.Errorf("blob %s: got %d bytes, expected %d", p.desc.Digest, n, p.desc.Size)
	}
	return err
}

// layer is the remote layer p stands for. By repository and digest, the
// layer is verified against its digest as it is read, as through the
// image; its size is checked by fetchOnce.
func (f *Fetcher) layer(ctx context.Context, p *pending) (v1.Layer, error) {
	if p.from != nil {
		return p.from.LayerByDigest(p.desc.Digest)
	}
	return remote.Layer(p.repo.Digest(p.desc.Digest.String()), f.client.Remote(ctx)...)
}

// copyBufs are the buffers blobs are downloaded through: a bundle of
// thousands of small images would otherwise allocate one per blob.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// publishingWriter writes at its own offset and tells followers how far
// the file is complete.
type publishingWriter struct {
	f        *os.File
	g        *growingFile
	off      int64
	progress io.Writer
}

func (w *publishingWriter) Write(b []byte) (int, error) {
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	w.g.wrote(w.off)
	w.progress.Write(b[:n])
	return n, err
}

type countingWriter struct{ f *Fetcher }

func (c countingWriter) Write(b []byte) (int, error) {
	c.f.copied.Add(int64(len(b)))
	c.f.progress.Write(b)
	return len(b), nil
}

// Open implements bundle.Blobs. A blob still downloading is followed as
// it grows, so writing overlaps fetching. Blobs fetched this run are
// verified by the download itself, whose error a reader sees at the end;
// older cache entries are hashed as they are read, and dropped from the
// cache if they fail, so a rerun fetches them again. Hence
// bundle.WithBlobsVerified.
func (f *Fetcher) Open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	f.mu.Lock()
	p := f.blobs[d.Digest]
	f.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("blob %s was never queued for fetching", d.Digest)
	}
	select {
	case <-p.started:
	case <-f.dead:
		select {
		case <-p.started: // it may have been fetched before the failure
		default:
			return nil, f.err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rc, err := p.file.open(ctx)
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
