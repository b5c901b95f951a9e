package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/registry/platform"
)

// tagPlan is what one tag will hold once pushed.
type tagPlan struct {
	dst  name.Repository
	tag  string
	ours *catalog.Manifest // what the archives give the tag
	// put is the manifest to put at the tag, nil when it is left as is;
	// digest and mediaType are what the tag holds afterwards.
	put       *pushManifest
	digest    v1.Hash
	mediaType types.MediaType
	platforms []*v1.Platform
	action    Action
	err       error // ErrTagExists, reported after every tag is read
}

// pushManifest is manifest bytes to put as they are.
type pushManifest struct {
	raw []byte
	m   *catalog.Manifest
}

// planTag reads the tag from the registry and settles what to put there.
func (r *pushRun) planTag(ctx context.Context, p *tagPlan) error {
	ref := p.dst.Tag(p.tag)
	p.platforms = platformsOf(p.ours)
	desc, err := remote.Get(ref, r.c.Remote(ctx)...)
	switch {
	case isNotFound(err):
		p.set(p.ours, ActionPushed)
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", ref, err)
	case desc.Digest == p.ours.Digest:
		p.digest, p.mediaType, p.action = desc.Digest, desc.MediaType, ActionUnchanged
		return nil
	}
	switch r.o.onExisting {
	case OnExistingTagSkip:
		p.digest, p.mediaType, p.action, p.platforms = desc.Digest, desc.MediaType, ActionSkipped, nil
	case OnExistingTagError:
		p.err = fmt.Errorf("%w: %s is %s, the archives give %s", ErrTagExists, ref, desc.Digest, p.ours.Digest)
	case OnExistingTagOverwrite:
		p.set(p.ours, ActionOverwritten)
	default:
		return r.mergeTag(ctx, p, desc)
	}
	return nil
}

func (p *tagPlan) set(m *catalog.Manifest, a Action) {
	p.put = &pushManifest{raw: m.Raw, m: m}
	p.digest, p.mediaType, p.action = m.Digest, m.MediaType, a
}

func platformsOf(m *catalog.Manifest) []*v1.Platform {
	var out []*v1.Platform
	for _, c := range imagesOf(m) {
		out = append(out, c.Platform)
	}
	return out
}

// mergeTag combines what the registry holds at the tag with the images
// pushed: entries for other platforms stay, ours replace those for the
// same platform.
func (r *pushRun) mergeTag(ctx context.Context, p *tagPlan, desc *remote.Descriptor) error {
	theirs, err := r.entriesOf(desc)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.dst.Tag(p.tag), err)
	}
	ours := imagesOf(p.ours)
	combined := make([]v1.Descriptor, 0, len(ours)+len(theirs))
	replaced := map[string]bool{}
	for _, c := range ours {
		combined = append(combined, c.Descriptor())
		replaced[c.Digest.String()] = true
		replaced[replaceKey(c.Platform)] = true
	}
	for _, d := range theirs {
		if !replaced[d.Digest.String()] && !replaced[replaceKey(d.Platform)] {
			combined = append(combined, d)
		}
	}
	if sameEntries(theirs, combined) {
		// The registry's list holds these very images already, perhaps in
		// another order or written by an earlier merge: leave it.
		p.digest, p.mediaType, p.action = desc.Digest, desc.MediaType, ActionUnchanged
		return nil
	}
	if len(combined) == len(ours) {
		p.set(p.ours, ActionOverwritten)
		return nil
	}
	if up := upstreamFor(p.ours, combined); up != nil {
		p.set(up, ActionMerged)
	} else {
		merged, err := mergedList(combined)
		if err != nil {
			return err
		}
		p.set(merged, ActionMerged)
	}
	if p.digest == desc.Digest {
		p.put, p.action = nil, ActionUnchanged
	}
	p.platforms = p.platforms[:0]
	for _, d := range combined {
		p.platforms = append(p.platforms, d.Platform)
	}
	return nil
}

func sameEntries(a, b []v1.Descriptor) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[v1.Hash]bool{}
	for _, d := range a {
		in[d.Digest] = true
	}
	for _, d := range b {
		if !in[d.Digest] {
			return false
		}
	}
	return true
}

// entriesOf lists a list's entries, or describes a single image with the
// platform its config gives.
func (r *pushRun) entriesOf(desc *remote.Descriptor) ([]v1.Descriptor, error) {
	if desc.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, err
		}
		return idx.Manifests, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d := desc.Descriptor
	p := configPlatform(cf)
	d.Platform = &p
	return []v1.Descriptor{d}, nil
}

// replaceKey is the platform an entry replaces: Windows entries of one
// build replace each other whatever their revision.
func replaceKey(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	osv := p.OSVersion
	if b, ok := platform.BuildOf(osv); ok {
		osv = b
	}
	return p.OS + "/" + p.Architecture + "/" + platform.NormalVariant(*p) + ":" + osv
}

// upstreamFor returns an upstream list the archives carry whose entries
// are exactly combined, so the tag gets upstream's bytes and digest.
func upstreamFor(ours *catalog.Manifest, combined []v1.Descriptor) *catalog.Manifest {
	want := map[v1.Hash]bool{}
	for _, d := range combined {
		want[d.Digest] = true
	}
	candidates := []*catalog.Manifest{}
	if ours.Upstream {
		candidates = append(candidates, ours)
	}
	for _, c := range imagesOf(ours) {
		if c.List != nil {
			candidates = append(candidates, c.List)
		}
	}
	for _, l := range candidates {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(l.Raw))
		if err != nil || len(idx.Manifests) != len(want) {
			continue
		}
		all := true
		for _, d := range idx.Manifests {
			all = all && want[d.Digest]
		}
		if all {
			return l
		}
	}
	return nil
}

// mergedList writes a list of entries sorted by platform, a Docker list
// when every entry is a Docker manifest, else an OCI index, as the catalog
// merges the archives' own images.
func mergedList(entries []v1.Descriptor) (*catalog.Manifest, error) {
	mt := types.DockerManifestList
	for _, d := range entries {
		if d.MediaType != types.DockerManifestSchema2 {
			mt = types.OCIImageIndex
		}
	}
	sorted := append([]v1.Descriptor(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sortKey(sorted[i].Platform) < sortKey(sorted[j].Platform) })
	raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: mt, Manifests: sorted})
	if err != nil {
		return nil, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &catalog.Manifest{Raw: raw, MediaType: mt, Digest: h}, nil
}

func sortKey(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	return p.String()
}

// putTag puts the planned manifest at the tag.
func (r *pushRun) putTag(ctx context.Context, p *tagPlan) error {
	if p.put == nil {
		return nil
	}
	return r.put(ctx, p.dst.Tag(p.tag), p.put.raw, p.put.m)
}

// report sums up what became of every reference and blob.
func (r *pushRun) report() *PushReport {
	rep := &PushReport{DryRun: r.o.dryRun, Images: []PushedImage{}}
	for _, p := range r.tags {
		img := PushedImage{Source: sourceName(p.ours, p.tag), Reference: p.dst.Tag(p.tag).String(),
			Digest: p.digest, MediaType: p.mediaType, Action: p.action, Platforms: platformStrings(p.platforms)}
		if p.action != ActionSkipped {
			r.countBlobs(&img, p.dst, imagesOf(p.ours))
		}
		rep.Images = append(rep.Images, img)
	}
	for _, j := range r.images {
		if r.underTag(j) {
			continue
		}
		source := ""
		if len(j.m.Names) > 0 {
			source = j.m.Names[0]
		}
		a := ActionPushed
		if j.existed {
			a = ActionUnchanged
		}
		img := PushedImage{Source: source, Reference: j.dst.Digest(j.m.Digest.String()).String(),
			Digest: j.m.Digest, MediaType: j.m.MediaType, Action: a, Platforms: platformStrings([]*v1.Platform{j.m.Platform})}
		r.countBlobs(&img, j.dst, []*catalog.Manifest{j.m})
		rep.Images = append(rep.Images, img)
	}
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	for _, c := range r.blobs.calls {
		switch c.status {
		case blobUploaded:
			rep.BlobsUploaded++
		case blobMounted:
			rep.BlobsMounted++
		default:
			rep.BlobsExisting++
		}
		rep.BytesUploaded += c.sent
	}
	return rep
}

// underTag reports whether a tag pushed the image, so it has a line there.
func (r *pushRun) underTag(j *imageJob) bool {
	for _, p := range r.tags {
		if p.dst.String() != j.dst.String() {
			continue
		}
		for _, m := range imagesOf(p.ours) {
			if m.Digest == j.m.Digest {
				return true
			}
		}
	}
	return false
}

func (r *pushRun) countBlobs(img *PushedImage, dst name.Repository, images []*catalog.Manifest) {
	seen := map[v1.Hash]bool{}
	for _, m := range images {
		blobs, _ := r.blobsOf(m)
		for _, d := range blobs {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			c, ok := r.blobs.status(dst, d.Digest)
			if !ok {
				continue
			}
			img.Blobs++
			switch c.status {
			case blobUploaded:
				img.Uploaded++
				img.BytesUploaded += c.sent
			case blobMounted:
				img.Mounted++
			default:
				img.Existing++
			}
		}
	}
}

// sourceName is the archive's name for a tag: the first name with that tag.
func sourceName(m *catalog.Manifest, tag string) string {
	var first string
	for _, c := range imagesOf(m) {
		for _, n := range c.Names {
			if first == "" {
				first = n
			}
			if t, err := name.NewTag(n); err == nil && t.TagStr() == tag {
				return n
			}
		}
	}
	return first
}

func platformStrings(ps []*v1.Platform) []string {
	var out []string
	for _, p := range ps {
		if p != nil {
			out = append(out, p.String())
		}
	}
	return out
}
