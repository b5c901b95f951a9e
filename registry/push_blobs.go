package registry

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle/catalog"
)

// blobStatus is what became of a blob in one repository.
type blobStatus int

const (
	blobExisting blobStatus = iota // the registry had it
	blobMounted                    // mounted from a repository pushed to before
	blobUploaded                   // sent (or, in a dry run, to be sent)
)

// blobCall is one blob's push to one repository; done closes when it ends.
type blobCall struct {
	done   chan struct{}
	repo   name.Repository
	size   int64
	status blobStatus
	sent   int64
	err    error
}

// blobTracker makes sure each blob goes to each repository once, and that
// the first repository to get a blob is where later ones mount it from.
type blobTracker struct {
	sem   chan struct{} // bounds uploads in flight, not waits
	mu    sync.Mutex
	calls map[string]*blobCall  // repository@digest
	home  map[v1.Hash]*blobCall // the first call for each digest
}

func newBlobTracker(jobs int) *blobTracker {
	return &blobTracker{sem: make(chan struct{}, jobs), calls: map[string]*blobCall{}, home: map[v1.Hash]*blobCall{}}
}

func blobKey(repo name.Repository, h v1.Hash) string { return repo.String() + "@" + h.String() }

// claim returns the call for the blob in repo and whether the caller is
// the one to run it, and the call of another repository to mount from.
func (t *blobTracker) claim(repo name.Repository, d v1.Descriptor) (c, home *blobCall, run bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := blobKey(repo, d.Digest)
	if c, ok := t.calls[key]; ok {
		return c, nil, false
	}
	c = &blobCall{done: make(chan struct{}), repo: repo, size: d.Size}
	t.calls[key] = c
	home, ok := t.home[d.Digest]
	if !ok {
		t.home[d.Digest] = c
		home = nil
	}
	return c, home, true
}

// known records a blob of a manifest the registry already holds in repo;
// false when this push had already seen the blob there.
func (t *blobTracker) known(repo name.Repository, d v1.Descriptor) bool {
	c, _, run := t.claim(repo, d)
	if run {
		c.status = blobExisting
		close(c.done)
	}
	return run
}

func (t *blobTracker) status(repo name.Repository, h v1.Hash) (*blobCall, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.calls[blobKey(repo, h)]
	return c, ok
}

func wait(ctx context.Context, c *blobCall) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureBlob puts one blob into dst unless this push already has.
func (r *pushRun) ensureBlob(ctx context.Context, dst name.Repository, d v1.Descriptor) error {
	c, home, run := r.blobs.claim(dst, d)
	if !run {
		return wait(ctx, c)
	}
	defer close(c.done)
	if home != nil && wait(ctx, home) != nil {
		home = nil // its upload failed: nothing to mount from
	}
	c.status, c.sent, c.err = r.sendBlob(ctx, dst, d, home)
	if c.err == nil && c.status != blobUploaded {
		r.skipProgress(c.size)
	}
	return c.err
}

// sendBlob uploads a blob, or mounts it from home's repository. go-
// containerregistry checks whether the registry has it first; whether it
// opened the blob tells an upload from a blob found in place or mounted.
func (r *pushRun) sendBlob(ctx context.Context, dst name.Repository, d v1.Descriptor, home *blobCall) (blobStatus, int64, error) {
	if r.o.dryRun || home != nil {
		exists, err := r.blobExists(ctx, dst, d.Digest)
		switch {
		case err != nil:
			return 0, 0, err
		case exists:
			return blobExisting, 0, nil
		case r.o.dryRun && home != nil:
			return blobMounted, 0, nil
		case r.o.dryRun:
			return blobUploaded, d.Size, nil
		}
	}
	b := &pushBlob{cat: r.cat, desc: d, progress: progressWriter(r.o.progress)}
	var l v1.Layer = b
	if home != nil {
		l = &remote.MountableLayer{Layer: b, Reference: home.repo.Digest(d.Digest.String())}
	}
	select {
	case r.blobs.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	err := r.pusher.Upload(ctx, dst, l)
	<-r.blobs.sem
	switch {
	case err != nil:
		return 0, b.sent.Load(), err
	case b.opened.Load():
		return blobUploaded, b.sent.Load(), nil
	case home != nil:
		return blobMounted, 0, nil
	}
	return blobExisting, 0, nil
}

// blobExists asks the registry for a blob with a HEAD request.
func (r *pushRun) blobExists(ctx context.Context, repo name.Repository, h v1.Hash) (bool, error) {
	l, err := remote.Layer(repo.Digest(h.String()), r.c.Remote(ctx)...)
	if err != nil {
		return false, err
	}
	if _, err := l.Size(); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// skipProgress counts a blob found in place or mounted as done.
func (r *pushRun) skipProgress(n int64) {
	w := progressWriter(r.o.progress)
	if w == nil {
		return
	}
	var zeros [32 << 10]byte
	for n > 0 {
		k := min(n, int64(len(zeros)))
		_, _ = w.Write(zeros[:k])
		n -= k
	}
}

// pushBlob is a catalog blob as the go-containerregistry layer an upload
// takes; it streams from the archive and counts what it sends.
type pushBlob struct {
	cat      *catalog.Catalog
	desc     v1.Descriptor
	progress io.Writer
	opened   atomic.Bool
	sent     atomic.Int64
}

var errNoDiffID = errors.New("push: diff IDs are not read")

func (b *pushBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *pushBlob) DiffID() (v1.Hash, error)            { return v1.Hash{}, errNoDiffID }
func (b *pushBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *pushBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *pushBlob) Uncompressed() (io.ReadCloser, error) {
	return nil, errNoDiffID
}

// Compressed opens the blob as stored, checked against its digest as it is
// read; a retried upload opens it again.
func (b *pushBlob) Compressed() (io.ReadCloser, error) {
	rc, _, err := b.cat.Blob(b.desc.Digest)
	if err != nil {
		return nil, err
	}
	b.opened.Store(true)
	return &countingReader{rc: rc, n: &b.sent, progress: b.progress}, nil
}

type countingReader struct {
	rc       io.ReadCloser
	n        *atomic.Int64
	progress io.Writer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	if c.progress != nil && n > 0 {
		_, _ = c.progress.Write(p[:n])
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }
