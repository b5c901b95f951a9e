package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

// maxIndexDepth bounds nested indexes (and index cycles).
const maxIndexDepth = 4

// vImage is one image as the metadata describes it.
type vImage struct {
	res    *ImageResult
	config v1.Hash
	cfg    *v1.ConfigFile
	// layers are the layer entry names in order, as the manifest lists them.
	layers []string
	// docker is true once a manifest.json entry was matched to it.
	docker bool
	norm   map[string]bool // normalised names
	// sources maps the digest of each stored list the image was chosen
	// from, checked to list it, to the names its index.json entry gives.
	sources map[string][]string
}

func (img *vImage) label() string {
	switch {
	case len(img.res.Names) > 0:
		return img.res.Names[0]
	case img.res.Digest != "":
		return img.res.Digest
	}
	return img.res.Config
}

// addNames adds names, keeping a set of their normalised forms so that
// matching stays linear however many names a hostile archive gives.
func (img *vImage) addNames(names ...string) {
	if img.norm == nil {
		img.norm = map[string]bool{}
	}
	for _, n := range names {
		if n != "" && !img.norm[normRef(n)] {
			img.norm[normRef(n)] = true
			img.res.Names = append(img.res.Names, n)
		}
	}
}

// named reports whether ref names this image.
func (img *vImage) named(ref string) bool { return img.norm[normRef(ref)] }

// checkOCI walks index.json down to every layer.
func (v *verifier) checkOCI() {
	_, hasIndex := v.entries[bundle.IndexFile]
	layout, idx := v.metaEntry(bundle.OCILayoutFile), v.metaEntry(bundle.IndexFile)
	if layout != nil {
		v.checkLayout(layout)
	}
	if hasIndex && v.entries[bundle.OCILayoutFile] == nil {
		v.warn("oci-layout", bundle.OCILayoutFile, "missing: index.json without oci-layout is not an OCI image layout")
	}
	if idx == nil {
		return
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(idx.data, &im); err != nil {
		v.fail("json", bundle.IndexFile, "invalid: %v", err)
		return
	}
	v.hasIndex = true
	v.walkIndex(&im, bundle.IndexFile, nil, 0)
}

// ociLayoutVersion is the only image layout version the OCI spec defines,
// and the one every loader checks for.
const ociLayoutVersion = "1.0.0"

func (v *verifier) checkLayout(e *vEntry) {
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(e.data, &l); err != nil || l.Version == "" {
		v.add(Check{Name: "oci-layout", Entry: e.name, Severity: SeverityError, Expected: `{"imageLayoutVersion":"1.0.0"}`, Found: quoteHead(e.data)})
		return
	}
	if l.Version != ociLayoutVersion {
		v.add(Check{Name: "oci-layout", Entry: e.name, Severity: SeverityError, Expected: `imageLayoutVersion "1.0.0"`, Found: strconv.Quote(l.Version)})
		return
	}
	v.pass("oci-layout", e.name, "version %s", l.Version)
}

func quoteHead(b []byte) string {
	if len(b) > 60 {
		return fmt.Sprintf("%q…", b[:60])
	}
	return fmt.Sprintf("%q", b)
}

// walkIndex checks every manifest an index lists. The images of a nested
// (multi-platform) index carry the name its parent entry gives it.
func (v *verifier) walkIndex(im *v1.IndexManifest, where string, parentNames []string, depth int) {
	for i, d := range im.Manifests {
		from := fmt.Sprintf("%s manifests[%d]", where, i)
		names := descriptorNames(d)
		if len(names) == 0 {
			names = parentNames
		}
		e := v.blobFor(d, from, firstOr(names, d.Digest.String()))
		if e == nil {
			continue
		}
		if !e.meta {
			v.fail("json", e.name, "%s points to it as a manifest, but it is not JSON", from)
			continue
		}
		mt := d.MediaType
		if mt == "" {
			mt = mediaTypeOf(e.data)
		}
		switch {
		case mt.IsIndex() && depth >= maxIndexDepth:
			v.fail("index", e.name, "indexes nested more than %d deep", maxIndexDepth)
		case mt.IsIndex():
			var child v1.IndexManifest
			if err := json.Unmarshal(e.data, &child); err != nil {
				v.fail("json", e.name, "invalid index: %v", err)
				continue
			}
			v.walkIndex(&child, e.name, names, depth+1)
		case mt.IsImage():
			v.ociImage(d, e, names, where)
		default:
			v.warn("index", e.name, "media type %q is not an image; only its digest was checked", mt)
		}
	}
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// mediaTypeOf reads a manifest's own mediaType for descriptors that leave
// it out; early OCI manifests lack one too, and then only the shape tells.
func mediaTypeOf(data []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(data, &m)
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// descriptorNames are the names loaders give an index entry. ref.name is
// often just a tag, which names nothing by itself.
func descriptorNames(d v1.Descriptor) []string {
	if n := d.Annotations[bundle.AnnotationContainerdName]; n != "" {
		return []string{n}
	}
	if n := d.Annotations[bundle.AnnotationRefName]; strings.ContainsAny(n, "/:@") {
		return []string{n}
	}
	return nil
}

// ociImage checks one image manifest that the index named where lists.
func (v *verifier) ociImage(d v1.Descriptor, e *vEntry, names []string, where string) {
	if img := v.byManifest[d.Digest]; img != nil {
		img.addNames(names...)
		v.sourceIndex(d, img, names)
		return
	}
	label := firstOr(names, d.Digest.String())
	m, err := v1.ParseManifest(bytes.NewReader(e.data))
	if err != nil {
		v.add(Check{Name: "json", Entry: e.name, Image: label, Severity: SeverityError, Message: "invalid manifest: " + err.Error()})
		return
	}
	info := bundle.ImageInfo{Digest: d.Digest.String(), MediaType: string(d.MediaType), Layers: len(m.Layers), Size: m.Config.Size}
	for _, l := range m.Layers {
		info.Size += l.Size
	}
	img := &vImage{res: &ImageResult{ImageInfo: info, Config: m.Config.Digest.String(), entries: []string{e.name}}, config: m.Config.Digest}
	v.byManifest[d.Digest] = img
	// Attestations (buildx provenance, SBOMs) are checked blob by blob but
	// are not images to list, name or match a platform against.
	if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
		img.addNames(names...)
		v.images = append(v.images, img)
	}
	v.sourceIndex(d, img, names)
	if ce := v.blobFor(m.Config, e.name+" config", label); ce != nil {
		img.res.entries = append(img.res.entries, ce.name)
		img.cfg = v.parseConfig(ce, label)
	}
	v.platformAgrees(d, img, where, label)
	for i, l := range m.Layers {
		name := bundle.BlobPath(l.Digest)
		img.layers = append(img.layers, name)
		img.res.entries = append(img.res.entries, name)
		le := v.lookup(name)
		if le == nil {
			v.absentLayer(img, l, name, label)
			continue
		}
		v.sizeCheck(le, l.Size, fmt.Sprintf("%s layer %d", e.name, i), label)
		v.diffIDCheck(img, le, i, label)
	}
	v.diffIDCount(img, label)
}

// absentLayer accepts a left-out layer only if it is foreign and says where
// to get it; anything else missing is a broken image.
func (v *verifier) absentLayer(img *vImage, l v1.Descriptor, name, label string) {
	switch {
	case bundle.IsForeign(l) && len(l.URLs) > 0:
		img.res.Missing++
		v.add(Check{Name: "foreign-layer", Entry: name, Image: label, OK: true, Severity: SeverityError, Message: "not stored; URLs " + strings.Join(l.URLs, " ")})
	case bundle.IsForeign(l):
		v.add(Check{Name: "foreign-layer", Entry: name, Image: label, Severity: SeverityError, Expected: "URLs for a foreign layer left out", Found: "no URLs"})
	default:
		v.add(Check{Name: "missing", Entry: name, Image: label, Severity: SeverityError, Message: fmt.Sprintf("layer (%s) of the image is not in the archive", l.MediaType)})
	}
}

func (v *verifier) parseConfig(e *vEntry, label string) *v1.ConfigFile {
	if !e.meta {
		v.add(Check{Name: "json", Entry: e.name, Image: label, Severity: SeverityError, Message: "config is not JSON"})
		return nil
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(e.data))
	if err != nil {
		v.add(Check{Name: "json", Entry: e.name, Image: label, Severity: SeverityError, Message: "invalid config: " + err.Error()})
		return nil
	}
	return cf
}

// platformAgrees compares index.json's platform with the config's, since
// loaders pick images by the first and run them by the second.
func (v *verifier) platformAgrees(d v1.Descriptor, img *vImage, where, label string) {
	if img.cfg == nil {
		return
	}
	cp := configPlatform(img.cfg)
	img.res.Platform = &cp
	if d.Platform == nil {
		return
	}
	p := *d.Platform
	if p.OS != cp.OS || p.Architecture != cp.Architecture || (p.Variant != "" && cp.Variant != "" && p.Variant != cp.Variant) ||
		(p.OSVersion != "" && p.OSVersion != cp.OSVersion) {
		v.add(Check{Name: "agree", Entry: where, Image: label, Severity: SeverityError, Message: "the index's platform against the config's",
			Expected: cp.String(), Found: p.String()})
	}
}

func configPlatform(cf *v1.ConfigFile) v1.Platform {
	if p := cf.Platform(); p != nil {
		return *p
	}
	return v1.Platform{}
}

// sourceIndex checks the manifest list an index.json entry says the image
// was chosen from: stored, hashing to its digest, and listing the image.
// Only a list that passes can satisfy a repo:tag@<list digest> expectation.
func (v *verifier) sourceIndex(d v1.Descriptor, img *vImage, names []string) {
	raw, ok := d.Annotations[bundle.AnnotationSourceDigest]
	if !ok {
		return
	}
	c := Check{Name: "source-index", Entry: bundle.IndexFile, Image: firstOr(names, d.Digest.String()), Severity: SeverityError}
	h, err := v1.NewHash(raw)
	if err != nil {
		c.Message = fmt.Sprintf("%s annotation %q is not a digest", bundle.AnnotationSourceDigest, raw)
		v.add(c)
		return
	}
	c.Entry = bundle.BlobPath(h)
	e := v.lookup(c.Entry)
	var idx v1.IndexManifest
	switch {
	case e == nil:
		c.Message = "the list the image was chosen from is not in the archive"
	case !e.meta || json.Unmarshal(e.data, &idx) != nil:
		c.Message = "the list the image was chosen from is not a readable index"
	case !e.Hashed || e.Blob.Digest != h:
		c.Expected, c.Found, c.Message = h.String(), e.Blob.Digest.String(), "the stored list does not hash to its digest"
	case !listsManifest(&idx, d.Digest):
		c.Message = "the stored list does not list the image's manifest " + d.Digest.String()
	case d.Annotations[bundle.AnnotationSourceMediaType] != string(mediaTypeOf(e.data)):
		c.Expected, c.Found = string(mediaTypeOf(e.data)), d.Annotations[bundle.AnnotationSourceMediaType]
		c.Message = bundle.AnnotationSourceMediaType + " against the stored list"
	default:
		c.OK, c.Message = true, "the list the image was chosen from"
		if img.sources == nil {
			img.sources = map[string][]string{}
		}
		img.sources[h.String()] = append(img.sources[h.String()], names...)
		if img.res.SourceIndex == "" {
			img.res.SourceIndex = h.String()
		}
	}
	v.add(c)
}

func listsManifest(idx *v1.IndexManifest, h v1.Hash) bool {
	for _, m := range idx.Manifests {
		if m.Digest == h {
			return true
		}
	}
	return false
}
