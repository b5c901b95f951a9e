package verify

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
)

// checkDocker checks manifest.json: each entry's config and layers, and,
// when index.json is there too, that both describe the same images.
func (v *verifier) checkDocker() {
	e := v.metaEntry(bundle.ManifestFile)
	if e == nil {
		return
	}
	var dms []bundle.DockerManifest
	if err := json.Unmarshal(e.data, &dms); err != nil {
		v.fail("json", bundle.ManifestFile, "invalid: %v", err)
		return
	}
	v.hasDocker = true
	for i, dm := range dms {
		v.dockerImage(fmt.Sprintf("manifest.json[%d]", i), dm)
	}
}

func (v *verifier) dockerImage(where string, dm bundle.DockerManifest) {
	label := firstOr(dm.RepoTags, where)
	ce := v.lookup(dm.Config)
	if ce == nil {
		v.add(Check{Name: "missing", Entry: orNone(bundle.CleanName(dm.Config)), Image: label, Severity: SeverityError,
			Message: where + " names it as Config, but it is not in the archive"})
		return
	}
	img := v.dockerMatch(where, dm, ce, label)
	if img == nil {
		return
	}
	img.addNames(dm.RepoTags...)
	for i, l := range dm.Layers {
		le := v.lookup(l)
		if le == nil {
			v.dockerAbsentLayer(img, dm, i, where, label)
			continue
		}
		v.touchLegacy(le.name)
		v.diffIDCheck(img, le, i, label)
	}
}

// dockerMatch finds the index.json image with the same config, checking
// they agree, or makes an image of the manifest.json entry when there is no
// index.json.
func (v *verifier) dockerMatch(where string, dm bundle.DockerManifest, ce *vEntry, label string) *vImage {
	if v.hasIndex {
		if v.byConfig == nil {
			v.byConfig = map[v1.Hash][]*vImage{}
			for _, img := range v.images {
				v.byConfig[img.config] = append(v.byConfig[img.config], img)
			}
		}
		// Images sharing a config (the same image compressed twice) each
		// take one manifest.json entry.
		if imgs := v.byConfig[ce.Blob.Digest]; len(imgs) > 0 {
			img := imgs[0]
			v.byConfig[ce.Blob.Digest] = imgs[1:]
			img.docker = true
			v.dockerAgrees(where, dm, img, label)
			return img
		}
		v.add(Check{Name: "agree", Entry: bundle.ManifestFile, Image: label, Severity: SeverityError,
			Message: fmt.Sprintf("%s has config %s, which no image in index.json uses", where, ce.Blob.Digest)})
		return nil
	}
	img := &vImage{res: &ImageResult{ImageInfo: bundle.ImageInfo{Layers: len(dm.Layers)}, Config: ce.Blob.Digest.String(), entries: []string{ce.name}}, config: ce.Blob.Digest}
	v.images = append(v.images, img)
	for _, l := range dm.Layers {
		img.layers = append(img.layers, bundle.CleanName(l))
		img.res.entries = append(img.res.entries, bundle.CleanName(l))
	}
	img.cfg = v.parseConfig(ce, label)
	if img.cfg != nil {
		p := configPlatform(img.cfg)
		img.res.Platform = &p
	}
	v.diffIDCount(img, label)
	return img
}

func (v *verifier) dockerAgrees(where string, dm bundle.DockerManifest, img *vImage, label string) {
	var layers []string
	for _, l := range dm.Layers {
		layers = append(layers, bundle.CleanName(l))
	}
	if strings.Join(layers, ",") != strings.Join(img.layers, ",") {
		v.add(Check{Name: "agree", Entry: bundle.ManifestFile, Image: label, Severity: SeverityError, Message: where + " Layers against the OCI manifest",
			Expected: strings.Join(img.layers, " "), Found: strings.Join(layers, " ")})
	}
	for _, tag := range dm.RepoTags {
		if !img.named(tag) {
			v.add(Check{Name: "agree", Entry: bundle.ManifestFile, Image: label, Severity: SeverityError,
				Message:  fmt.Sprintf("%s RepoTags has %s, which index.json does not name", where, tag),
				Expected: strings.Join(img.res.Names, " "), Found: tag})
		}
	}
	// docker load tags only what RepoTags lists, so a tag index.json gives
	// and manifest.json leaves out is lost to docker users.
	tags := map[string]bool{}
	for _, tag := range dm.RepoTags {
		tags[normRef(tag)] = true
	}
	for _, n := range img.res.Names {
		if ref, err := name.NewTag(n, name.WeakValidation); err == nil && !tags[ref.Name()] {
			v.add(Check{Name: "agree", Entry: bundle.ManifestFile, Image: label, Severity: SeverityError,
				Message:  fmt.Sprintf("index.json names %s, but %s RepoTags does not", n, where),
				Expected: n, Found: strings.Join(dm.RepoTags, " ")})
		}
	}
}

// checkDockerCoverage reports index.json images that manifest.json leaves
// out: docker load would not load them.
func (v *verifier) checkDockerCoverage() {
	if !v.hasIndex || !v.hasDocker {
		return
	}
	for _, img := range v.images {
		if !img.docker {
			v.add(Check{Name: "agree", Entry: bundle.ManifestFile, Image: img.label(), Severity: SeverityError,
				Message: "index.json lists this image, manifest.json does not"})
		}
	}
}

// dockerAbsentLayer accepts a missing layer only if LayerSources says where
// it comes from, which is what docker load needs for foreign layers.
func (v *verifier) dockerAbsentLayer(img *vImage, dm bundle.DockerManifest, i int, where, label string) {
	entry := bundle.CleanName(dm.Layers[i])
	if img.cfg != nil && i < len(img.cfg.RootFS.DiffIDs) {
		if src, ok := dm.LayerSources[img.cfg.RootFS.DiffIDs[i]]; ok && len(src.URLs) > 0 {
			if !v.hasIndex {
				img.res.Missing++
			}
			v.add(Check{Name: "foreign-layer", Entry: entry, Image: label, OK: true, Severity: SeverityError,
				Message: where + " LayerSources gives URLs " + strings.Join(src.URLs, " ")})
			return
		}
	}
	v.add(Check{Name: "missing", Entry: entry, Image: label, Severity: SeverityError,
		Message: fmt.Sprintf("%s lists it as layer %d, but it is not stored and LayerSources has no URLs for it", where, i)})
}

// touchLegacy marks the per-layer files of docker's legacy format as used.
func (v *verifier) touchLegacy(layer string) {
	dir, base := path.Split(layer)
	if base != "layer.tar" {
		return
	}
	for _, f := range []string{"json", "VERSION"} {
		if e := v.entries[dir+f]; e != nil {
			e.ref = true
		}
	}
}

// legacyDirs maps each legacy layer id (<id>/layer.tar) to the entry its
// layer.tar resolves to. skopeo and podman write layers as <hex>.tar and
// keep <id>/{layer.tar,json,VERSION} beside them, layer.tar a symlink, for
// old docker versions.
func (v *verifier) legacyDirs() map[string]*vEntry {
	if v.legacy != nil {
		return v.legacy
	}
	dirs := map[string]*vEntry{}
	v.legacy, v.legacyOf = dirs, map[*vEntry][]string{}
	for _, e := range v.order {
		if dir, base := path.Split(e.name); base == "layer.tar" && dir != "" {
			if target, _ := v.resolve(e.name); target != nil {
				id := strings.TrimSuffix(dir, "/")
				dirs[id] = target
				v.legacyOf[target] = append(v.legacyOf[target], id)
			}
		}
	}
	return dirs
}

// touchLegacyDirs marks a legacy layer directory used when the layer it
// holds or points to is.
func (v *verifier) touchLegacyDirs() {
	for id, target := range v.legacyDirs() {
		if target.ref {
			v.lookup(id + "/layer.tar")
			v.touchLegacy(id + "/layer.tar")
		}
	}
}

// checkRepositories checks the legacy repositories file against manifest.json.
func (v *verifier) checkRepositories() {
	e := v.metaEntry(bundle.RepositoriesFile)
	if e == nil {
		return
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(e.data, &repos); err != nil {
		v.fail("json", bundle.RepositoriesFile, "invalid: %v", err)
		return
	}
	for _, repo := range sortedKeys(repos) {
		for _, tag := range sortedKeys(repos[repo]) {
			v.repositoryAgrees(repo+":"+tag, repos[repo][tag])
		}
	}
}

func (v *verifier) repositoryAgrees(ref, top string) {
	img := v.imageNamed(ref)
	if img == nil {
		v.add(Check{Name: "agree", Entry: bundle.RepositoriesFile, Image: ref, Severity: SeverityError, Message: "names an image that manifest.json and index.json do not"})
		return
	}
	c := Check{Name: "agree", Entry: bundle.RepositoriesFile, Image: ref, OK: true, Severity: SeverityWarning, Message: "top layer id"}
	if ids := v.topLayerIDs(img); !slices.Contains(ids, top) {
		c.OK, c.Expected, c.Found = false, strings.Join(ids, " or "), top
	}
	v.add(c)
}

// topLayerIDs are the ids repositories may give an image: the last layer's
// directory in legacy archives, a legacy directory whose layer.tar points
// to the last layer, or the last blob's hex in bundles.
func (v *verifier) topLayerIDs(img *vImage) []string {
	if len(img.layers) == 0 {
		return nil
	}
	last := img.layers[len(img.layers)-1]
	dir, base := path.Split(last)
	if base == "layer.tar" {
		return []string{strings.TrimSuffix(dir, "/")}
	}
	ids := []string{strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar")}
	if target, _ := v.resolve(last); target != nil {
		v.legacyDirs()
		ids = append(ids, v.legacyOf[target]...)
	}
	return ids
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normRef makes docker.io/rancher/x:1, rancher/x:1 and
// index.docker.io/rancher/x:1 the same string.
func normRef(s string) string {
	ref, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return s
	}
	return ref.Name()
}

// imageNamed finds the image ref names, through an index built on first
// use, once every name is known.
func (v *verifier) imageNamed(ref string) *vImage {
	if v.byName == nil {
		v.byName = map[string]*vImage{}
		for _, img := range v.images {
			for n := range img.norm {
				if v.byName[n] == nil {
					v.byName[n] = img
				}
			}
		}
	}
	return v.byName[normRef(ref)]
}
