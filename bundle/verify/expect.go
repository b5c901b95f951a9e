package verify

import (
	"archive/tar"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rancher/ferry/registry/platform"
)

// crossCheck runs everything that needs the whole archive seen.
func (v *verifier) crossCheck() {
	v.checkBlobNames()
	v.checkOCI()
	v.checkDocker()
	v.checkDockerCoverage()
	if !v.hasIndex && !v.hasDocker {
		v.fail("archive", "", "no usable index.json or manifest.json: not an image archive")
		return
	}
	if len(v.images) == 0 {
		v.fail("archive", "", "no images: the metadata describes none")
	}
	v.checkRepositories()
	v.checkLinks()
	v.touchLegacyDirs()
	v.checkExtra()
	v.checkExpected()
	v.checkPlatforms()
	v.passStructure()
}

// hardLinkLoaders are the loaders that refuse a blob stored as a tar hard
// link; only docker load reads one.
const hardLinkLoaders = "containerd (ctr images import), skopeo, podman and go-containerregistry's tarball.Image (k3s, rke2)"

// checkLinks reports links whose target is not in the archive, and hard
// links, which most loaders refuse: a warning, an error with WithStrict.
func (v *verifier) checkLinks() {
	for _, e := range v.order {
		if e.typ == tar.TypeLink && v.entries[e.link] != nil {
			sev := SeverityWarning
			if v.o.strict {
				sev = SeverityError
			}
			v.add(Check{Name: "hardlink", Entry: e.name, Severity: sev,
				Message: fmt.Sprintf("a tar hard link to %s, which %s refuse; only docker load reads it", e.link, hardLinkLoaders)})
		}
		if e.link == "" || v.entries[e.link] != nil {
			continue
		}
		sev := SeverityWarning
		if e.typ != tar.TypeSymlink {
			sev = SeverityError
		}
		v.add(Check{Name: "link", Entry: e.name, Severity: sev, Expected: "a target in the archive", Found: e.link + " (missing)"})
	}
}

// checkExtra reports entries that nothing refers to: a loader ignores them,
// so they are dead weight or a sign of a broken writer.
func (v *verifier) checkExtra() {
	for _, e := range v.order {
		if e.ref || e.typ == tar.TypeDir {
			continue
		}
		c := Check{Name: "extra", Entry: e.name, Severity: SeverityError, Message: "nothing in the metadata refers to it"}
		if v.o.allowExtra {
			c.OK, c.Message = true, c.Message+" (allowed)"
		}
		v.add(c)
	}
}

// checkExpected compares the archive's images with the list asked for.
func (v *verifier) checkExpected() {
	if v.o.expected == nil {
		return
	}
	matched := map[*vImage]bool{}
	for _, want := range v.o.expected {
		ref, err := name.ParseReference(want, name.WeakValidation)
		if err != nil {
			v.add(Check{Name: "expected-image", Image: want, Severity: SeverityError, Message: "not a valid reference: " + err.Error()})
			continue
		}
		found := v.findRef(ref)
		c := Check{Name: "expected-image", Image: want, OK: len(found) > 0, Severity: SeverityError}
		if !c.OK {
			c.Expected, c.Found = ref.Name(), "no image of that name"+v.unnamedNote()
			v.otherPin(&c, ref)
		}
		for _, img := range found {
			matched[img] = true
		}
		v.add(c)
	}
	if !v.o.exact {
		return
	}
	for _, img := range v.images {
		if !matched[img] {
			v.add(Check{Name: "unexpected-image", Image: img.label(), Severity: SeverityError, Message: "in the archive but not in the image list (--exact)"})
		}
	}
}

// unnamedNote explains a miss when some images carry no repository name,
// as in skopeo's oci-archive, whose ref.name holds only a tag.
func (v *verifier) unnamedNote() string {
	n := 0
	for _, img := range v.images {
		if len(img.res.Names) == 0 {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d image(s) in the archive have no repository name: their ref.name is only a tag)", n)
}

// findRef matches a reference by name (every platform of a multi-platform
// image), or a digest reference by the digest of the image's manifest or of
// the stored list it was chosen from, under the reference's repository and
// tag (repo:tag@sha256:… pins repo:tag).
func (v *verifier) findRef(ref name.Reference) []*vImage {
	var found []*vImage
	d, isDigest := ref.(name.Digest)
	tagged := taggedName(ref)
	for _, img := range v.images {
		if img.named(ref.Name()) || (isDigest && img.pinnedBy(d, tagged)) {
			found = append(found, img)
		}
	}
	return found
}

func (img *vImage) pinnedBy(d name.Digest, tagged string) bool {
	if tagged != "" && !img.named(tagged) {
		return false
	}
	names, sources := img.res.Names, img.sources[d.DigestStr()]
	if tagged != "" {
		names = []string{tagged}
		sources = slices.DeleteFunc(slices.Clone(sources), func(n string) bool { return normRef(n) != normRef(tagged) })
	}
	return (img.res.Digest == d.DigestStr() && sameRepo(names, d)) || sameRepo(sources, d)
}

// otherPin explains a missed repo:tag@digest whose repo:tag the archive
// holds under another digest: the bundle was built from another list.
func (v *verifier) otherPin(c *Check, ref name.Reference) {
	tagged := taggedName(ref)
	if _, ok := ref.(name.Digest); !ok || tagged == "" {
		return
	}
	var have []string
	for _, img := range v.images {
		if img.named(tagged) {
			s := "manifest " + img.res.Digest
			if img.res.SourceIndex != "" {
				s += " from list " + img.res.SourceIndex
			}
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return
	}
	c.Expected = ref.String()
	c.Found = tagged + " as " + strings.Join(have, ", ")
	c.Message = "the bundle was built from another digest than the image list pins; rebuild the bundle from the pinned list (ferry bundle -f LIST)"
}

// taggedName is repo:tag for a reference written with a tag, also in
// repo:tag@sha256:…, and "" for one without.
func taggedName(ref name.Reference) string {
	base, _, _ := strings.Cut(ref.String(), "@")
	if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
		return ref.Context().Name() + base[i:]
	}
	return ""
}

func sameRepo(names []string, d name.Digest) bool {
	for _, n := range names {
		if r, err := name.ParseReference(n, name.WeakValidation); err == nil && r.Context().Name() == d.Context().Name() {
			return true
		}
	}
	return false
}

func (v *verifier) checkPlatforms() {
	if v.o.platform == nil {
		return
	}
	for _, img := range v.images {
		c := Check{Name: "platform", Image: img.label(), Severity: SeverityError, Expected: v.o.platform.String()}
		if img.res.Platform == nil {
			c.Found = "no readable config"
			v.add(c)
			continue
		}
		c.Found = img.res.Platform.String()
		err := v.o.platform.Check(*img.res.Platform)
		// A mismatch speaks for itself as expected/found; a warning needs
		// its reason.
		switch {
		case err == nil:
			c.OK = true
		case errors.Is(err, platform.ErrNoOSVersion):
			c.Severity, c.Message = SeverityWarning, err.Error()
		}
		v.add(c)
	}
}

// structureChecks say what a check of each name covers, so that a clean
// archive's report still lists them as passed.
var structureChecks = []struct{ name, msg string }{
	{"archive", "a well-formed tar, read to the end"},
	{"path", "no empty, absolute, drive-letter or .. paths, with / and \\ alike"},
	{"link", "no links leaving the archive or dangling"},
	{"type", "only regular files, directories and links"},
	{"duplicate", "no name stored twice"},
	{"extra", "every entry referenced"},
}

// passStructure records the structure checks that found nothing.
func (v *verifier) passStructure() {
	for _, sc := range structureChecks {
		if !slices.ContainsFunc(v.rep.Checks, func(c Check) bool { return c.Name == sc.name }) {
			v.pass(sc.name, "", "%s", sc.msg)
		}
	}
}

// finish fills in the report's summary fields.
func (v *verifier) finish() {
	v.rep.Entries = len(v.order)
	v.rep.Format = v.format()
	c := Check{Name: "order", OK: true, Severity: SeverityWarning, Message: "metadata first"}
	if v.outOfOrd != "" {
		v.rep.MetadataFirst = false
		c.OK, c.Entry = false, v.outOfOrd
		c.Message = fmt.Sprintf("metadata after layer %s, so loaders read the whole archive to list it; 'ferry reorder' fixes that", v.firstBulk)
		if v.o.strict {
			c.Severity = SeverityError
		}
	}
	v.add(c)
	v.imageResults()
	// A passing check has no severity: the report reads "ok", nothing else.
	for i := range v.rep.Checks {
		if v.rep.Checks[i].OK {
			v.rep.Checks[i].Severity = ""
		}
	}
}

func (v *verifier) format() string {
	var parts []string
	if v.hasIndex {
		parts = append(parts, "oci")
	}
	if v.hasDocker {
		parts = append(parts, "docker")
		for _, img := range v.images {
			if len(img.layers) > 0 && strings.HasSuffix(img.layers[0], "/layer.tar") {
				parts[len(parts)-1] = "docker-legacy"
				break
			}
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "+")
}

// imageResults marks an image failed when any check on it or on one of
// its entries failed.
func (v *verifier) imageResults() {
	badEntry, badImage := map[string]bool{}, map[string]bool{}
	for _, c := range v.rep.Checks {
		if !c.OK && c.Severity == SeverityError {
			badEntry[c.Entry] = true
			badImage[c.Image] = true
		}
	}
	v.rep.Images = make([]ImageResult, 0, len(v.images))
	for _, img := range v.images {
		res := *img.res
		sort.Strings(res.Names)
		res.OK = !badImage[img.label()] && !badImage[res.Digest] && !badImage[res.Config]
		for _, n := range res.Names {
			res.OK = res.OK && !badImage[n]
		}
		for _, e := range res.entries {
			res.OK = res.OK && !badEntry[e]
		}
		v.rep.Images = append(v.rep.Images, res)
	}
}
