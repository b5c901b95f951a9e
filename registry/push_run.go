package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/rancher/ferry/bundle/catalog"
)

// pushRun is one Push: the plan per tag, then images, lists and tags.
type pushRun struct {
	c      *Client
	cat    *catalog.Catalog
	target pushTarget
	o      pushOptions
	pusher *remote.Pusher
	blobs  *blobTracker

	tags    []*tagPlan
	images  []*imageJob
	byImage map[string]*imageJob // repository@digest
}

// imageJob is one image manifest to put by digest into one repository.
type imageJob struct {
	dst     name.Repository
	m       *catalog.Manifest
	blobs   []v1.Descriptor
	existed bool
}

func (r *pushRun) run(ctx context.Context) (*PushReport, error) {
	if err := r.plan(ctx); err != nil {
		return nil, err
	}
	if r.o.progress != nil {
		r.o.progress.SetTotal(r.totalBytes())
	}
	if err := r.eachLimited(ctx, len(r.images), func(ctx context.Context, i int) error {
		return r.checkImage(ctx, r.images[i])
	}); err != nil {
		return nil, err
	}
	if err := r.uploadInArchiveOrder(ctx); err != nil {
		return nil, err
	}
	if err := r.eachLimited(ctx, len(r.images), func(ctx context.Context, i int) error {
		return r.pushImage(ctx, r.images[i])
	}); err != nil {
		return nil, err
	}
	if err := r.pushUpstreamLists(ctx); err != nil {
		return nil, err
	}
	if err := r.eachLimited(ctx, len(r.tags), func(ctx context.Context, i int) error {
		return r.putTag(ctx, r.tags[i])
	}); err != nil {
		return nil, err
	}
	return r.report(), nil
}

// plan reads every tag from the registry, decides what each will hold,
// and lists the images to push: those of the tags pushed and those named
// by digest only. With OnExistingTagError it fails here, before any upload.
func (r *pushRun) plan(ctx context.Context) error {
	r.byImage = map[string]*imageJob{}
	var plans []*tagPlan
	for _, repo := range r.cat.Repositories() {
		dst, err := r.target.repository(repo)
		if err != nil {
			return fmt.Errorf("%w: destination for %s: %w", ErrBadReference, repo, err)
		}
		tags, err := r.cat.Tags(repo)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			m, err := r.cat.Manifest(repo, tag)
			if err != nil {
				return err
			}
			plans = append(plans, &tagPlan{dst: dst, tag: tag, ours: m})
		}
	}
	if err := r.eachLimited(ctx, len(plans), func(ctx context.Context, i int) error {
		return r.planTag(ctx, plans[i])
	}); err != nil {
		return err
	}
	r.tags = plans
	var exists []error
	underTag := map[string]bool{}
	for _, p := range plans {
		if p.err != nil {
			exists = append(exists, p.err)
		}
		for _, m := range imagesOf(p.ours) {
			underTag[blobKey(p.dst, m.Digest)] = true
		}
		if p.action != ActionSkipped {
			for _, m := range imagesOf(p.ours) {
				r.addImage(p.dst, m)
			}
		}
	}
	if len(exists) > 0 {
		return errors.Join(exists...)
	}
	return r.planDigestOnly(underTag)
}

// planDigestOnly adds the images no tag holds: the archives name them by
// digest only.
func (r *pushRun) planDigestOnly(underTag map[string]bool) error {
	for _, repo := range r.cat.Repositories() {
		dst, err := r.target.repository(repo)
		if err != nil {
			return err
		}
		ms, err := r.cat.Manifests(repo)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.MediaType.IsImage() && !underTag[blobKey(dst, m.Digest)] {
				r.addImage(dst, m)
			}
		}
	}
	return nil
}

func (r *pushRun) addImage(dst name.Repository, m *catalog.Manifest) {
	key := blobKey(dst, m.Digest)
	if _, ok := r.byImage[key]; ok {
		return
	}
	j := &imageJob{dst: dst, m: m}
	r.byImage[key] = j
	r.images = append(r.images, j)
}

// imagesOf returns the images a manifest is or lists.
func imagesOf(m *catalog.Manifest) []*catalog.Manifest {
	if m.MediaType.IsIndex() {
		return m.Children
	}
	return []*catalog.Manifest{m}
}

// blobsOf lists an image's config and layers the catalog holds; a foreign
// layer the archive left out stays a URL in the manifest.
func (r *pushRun) blobsOf(m *catalog.Manifest) ([]v1.Descriptor, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(m.Raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	var out []v1.Descriptor
	for _, d := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		if size, ok := r.cat.Size(d.Digest); ok {
			d.Size = size
			out = append(out, d)
		}
	}
	return out, nil
}

func (r *pushRun) totalBytes() int64 {
	seen := map[string]bool{}
	var n int64
	for _, j := range r.images {
		blobs, err := r.blobsOf(j.m)
		if err != nil {
			continue // pushImage reports it
		}
		for _, d := range blobs {
			if k := blobKey(j.dst, d.Digest); !seen[k] {
				seen[k] = true
				n += d.Size
			}
		}
	}
	return n
}

// checkImage lists an image's blobs and asks whether the registry has its
// manifest; an image already there is left, its blobs with it.
func (r *pushRun) checkImage(ctx context.Context, j *imageJob) error {
	blobs, err := r.blobsOf(j.m)
	if err != nil {
		return err
	}
	j.blobs = blobs
	if j.existed, err = r.manifestExists(ctx, j.dst.Digest(j.m.Digest.String())); err != nil {
		return err
	}
	if j.existed {
		for _, d := range blobs {
			if r.blobs.known(j.dst, d) {
				r.skipProgress(d.Size)
			}
		}
	}
	return nil
}

// pushImage puts one image the registry lacks by digest, after its blobs.
func (r *pushRun) pushImage(ctx context.Context, j *imageJob) error {
	if j.existed {
		return nil
	}
	ref := j.dst.Digest(j.m.Digest.String())
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range j.blobs {
		g.Go(func() error { return r.ensureBlob(gctx, j.dst, d) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return r.put(ctx, ref, j.m.Raw, j.m)
}

// pushUpstreamLists puts, by digest, each upstream list whose children are
// all pushed, so a pin of the list's digest resolves even when no tag
// holds the list.
func (r *pushRun) pushUpstreamLists(ctx context.Context) error {
	for _, repo := range r.cat.Repositories() {
		dst, err := r.target.repository(repo)
		if err != nil {
			return err
		}
		ms, err := r.cat.Manifests(repo)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !m.Upstream || !m.Complete() || !r.allPushed(dst, m.Children) {
				continue
			}
			ref := dst.Digest(m.Digest.String())
			exists, err := r.manifestExists(ctx, ref)
			if err != nil {
				return err
			}
			if !exists {
				if err := r.put(ctx, ref, m.Raw, m); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *pushRun) allPushed(dst name.Repository, children []*catalog.Manifest) bool {
	for _, c := range children {
		if _, ok := r.byImage[blobKey(dst, c.Digest)]; !ok {
			return false
		}
	}
	return true
}

// manifestExists asks for a manifest with a HEAD request.
func (r *pushRun) manifestExists(ctx context.Context, ref name.Reference) (bool, error) {
	_, err := remote.Head(ref, r.c.Remote(ctx)...)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("checking %s: %w", ref, err)
}

// put sends exact manifest bytes; m, when given, explains a refusal of
// foreign layer URLs.
func (r *pushRun) put(ctx context.Context, ref name.Reference, raw []byte, m *catalog.Manifest) error {
	if r.o.dryRun {
		return nil
	}
	mt := m.MediaType
	if err := r.pusher.Put(ctx, ref, rawManifest{raw: raw, mt: mt}); err != nil {
		if hasURLs(raw) && rejected(err) {
			return fmt.Errorf("pushing %s: %w: the manifest lists foreign layers with URLs; "+
				"a distribution registry accepts them only with validation.manifests.urls.allow set (for example [\"^https?://\"]): %w",
				ref, ErrForeignLayersRejected, err)
		}
		if hasErrorCode(err, transport.ManifestBlobUnknownErrorCode) {
			return fmt.Errorf("pushing %s: %w: %w", ref, ErrMissingChild, err)
		}
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

func hasURLs(raw []byte) bool {
	mf, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return false
	}
	for _, l := range mf.Layers {
		if len(l.URLs) > 0 {
			return true
		}
	}
	return false
}

func rejected(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusBadRequest ||
		hasErrorCode(err, transport.ManifestInvalidErrorCode, transport.BlobUnknownErrorCode, transport.ManifestBlobUnknownErrorCode))
}

// eachLimited runs f for 0..n-1, Client jobs at a time, stopping at the
// first error.
func (r *pushRun) eachLimited(ctx context.Context, n int, f func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.c.opts.jobs)
	for i := 0; i < n; i++ {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}
