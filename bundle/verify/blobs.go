package verify

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/internal/inflate"
)

// lookup finds the regular entry a reference names, following links, and
// marks everything on the way as referenced.
func (v *verifier) lookup(name string) *vEntry {
	target, chain := v.resolve(name)
	for _, e := range chain {
		e.ref = true
	}
	return target
}

// resolve follows links from name to a regular entry, returning it (nil if
// there is none) and every entry on the way.
func (v *verifier) resolve(name string) (*vEntry, []*vEntry) {
	var chain []*vEntry
	name = bundle.CleanName(name)
	for hops := 0; hops < 8; hops++ {
		e := v.entries[name]
		if e == nil {
			return nil, chain
		}
		chain = append(chain, e)
		if e.link == "" {
			if e.regular() {
				return e, chain
			}
			return nil, chain
		}
		name = e.link
	}
	return nil, chain
}

// metaEntry returns the named metadata file if it was read as JSON,
// reporting why not otherwise (an oversized one is reported as read).
func (v *verifier) metaEntry(name string) *vEntry {
	e := v.entries[name]
	if e == nil {
		return nil
	}
	e.ref = true
	switch {
	case e.meta:
		return e
	case !e.regular():
		v.add(Check{Name: "type", Entry: name, Severity: SeverityError, Expected: "a regular file", Found: fmt.Sprintf("tar type %q", e.typ)})
	}
	return nil
}

// blobFor finds the blob a descriptor points to and checks its size.
func (v *verifier) blobFor(d v1.Descriptor, from, image string) *vEntry {
	name := bundle.BlobPath(d.Digest)
	e := v.lookup(name)
	if e == nil {
		v.add(Check{Name: "missing", Entry: name, Image: image, Severity: SeverityError,
			Message: from + " points to it, but it is not in the archive"})
		return nil
	}
	v.sizeCheck(e, d.Size, from, image)
	return e
}

func (v *verifier) sizeCheck(e *vEntry, want int64, from, image string) {
	c := Check{Name: "blob-size", Entry: e.name, Image: image, OK: e.size == want, Severity: SeverityError, Message: "size as " + from + " gives it"}
	if !c.OK {
		c.Expected, c.Found = fmt.Sprintf("%d bytes", want), fmt.Sprintf("%d bytes", e.size)
	}
	v.add(c)
}

// diffIDCheck compares a stored layer's uncompressed digest with the
// config's rootfs.diff_ids, once per layer and expected value.
func (v *verifier) diffIDCheck(img *vImage, e *vEntry, i int, label string) {
	if img.cfg == nil || i >= len(img.cfg.RootFS.DiffIDs) {
		return
	}
	if v.o.mode == ModeDigests && e.Blob.Kind != inflate.KindTar && e.Blob.Kind != inflate.KindUnknown {
		return // not decompressed: nothing known of its diff_id
	}
	want := img.cfg.RootFS.DiffIDs[i]
	key := e.name + " " + want.String()
	if v.diffSeen[key] {
		return
	}
	v.diffSeen[key] = true
	c := Check{Name: "diff-id", Entry: e.name, Image: label, Severity: SeverityError, Expected: want.String(),
		Message: fmt.Sprintf("layer %d against the config's rootfs.diff_ids", i)}
	switch {
	case e.Diff.Err != nil:
		c.Found = e.Diff.Err.Error()
	case e.Blob.Kind == inflate.KindUnknown && e.Blob.Digest == want:
		// Uncompressed and not a tar (an attestation's in-toto JSON): the
		// config says so, and loaders only need the bytes to match.
		c.OK = true
	case e.Blob.Kind == inflate.KindUnknown:
		c.Found = "a blob that is neither gzip, zstd nor tar"
	default:
		c.Found = e.Diff.ID.String()
		c.OK = e.Diff.ID == want
	}
	if c.OK {
		c.Expected, c.Found = "", ""
	}
	v.add(c)
}

func (v *verifier) diffIDCount(img *vImage, label string) {
	if img.cfg == nil || len(img.cfg.RootFS.DiffIDs) == len(img.layers) {
		return
	}
	v.add(Check{Name: "config", Entry: bundle.CleanName(bundle.BlobPath(img.config)), Image: label, Severity: SeverityError, Message: "rootfs.diff_ids against the layers",
		Expected: fmt.Sprintf("%d diff_ids", len(img.layers)), Found: fmt.Sprintf("%d", len(img.cfg.RootFS.DiffIDs))})
}

// digestNames are entry names that state their own digest: OCI blobs, and
// the configs and layers of docker save and crane tarballs.
var digestNames = regexp.MustCompile(`^(?:blobs/sha256/|sha256:)?([0-9a-f]{64})(?:\.json|\.tar\.gz|\.tar)?$`)

// checkBlobNames checks every entry whose name is a digest against its bytes.
func (v *verifier) checkBlobNames() {
	for _, e := range v.order {
		if !e.regular() || !e.Hashed {
			continue
		}
		dir, _ := path.Split(e.name)
		if strings.HasPrefix(e.name, "blobs/") && dir != bundle.BlobsDir {
			v.warn("blob-digest", e.name, "digest algorithm %s not checked", strings.TrimSuffix(strings.TrimPrefix(dir, "blobs/"), "/"))
			continue
		}
		hex, ok := nameDigest(e.name)
		if !ok {
			if dir == bundle.BlobsDir {
				v.fail("blob-digest", e.name, "blob name is not a sha256 digest")
			}
			continue
		}
		v.add(blobDigestCheck(e, hex))
	}
}

// reportDamagedBlobs reports the blobs read whole before a pass ended early
// whose bytes do not hash to their names: a damaged zstd frame may decode
// to wrong bytes without an error until its checksum, at its end, ends the
// pass in a later entry; this names the blob the damage is in.
func (v *verifier) reportDamagedBlobs() {
	for _, e := range v.order {
		if !e.regular() || !e.Hashed {
			continue
		}
		if hex, ok := nameDigest(e.name); ok {
			if c := blobDigestCheck(e, hex); !c.OK {
				v.add(c)
			}
		}
	}
}

// nameDigest returns the sha256 hex an entry's name states, if it does.
func nameDigest(name string) (string, bool) {
	dir, base := path.Split(name)
	m := digestNames.FindStringSubmatch(name)
	if m == nil && dir == "" {
		m = digestNames.FindStringSubmatch(base)
	}
	if m == nil || (strings.HasPrefix(name, "blobs/") && dir != bundle.BlobsDir) {
		return "", false
	}
	return m[1], true
}

func blobDigestCheck(e *vEntry, hex string) Check {
	c := Check{Name: "blob-digest", Entry: e.name, Severity: SeverityError, OK: e.Blob.Digest.Hex == hex}
	if !c.OK {
		c.Expected, c.Found = "sha256:"+hex, e.Blob.Digest.String()
		c.Message = "content does not hash to its name"
	}
	return c
}
