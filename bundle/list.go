package bundle

import (
	"bytes"
	"path"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageInfo describes one image in an archive, for `ferry list`.
type ImageInfo struct {
	// Names are the image's names: io.containerd.image.name or RepoTags.
	Names []string `json:"names"`
	// Digest is the manifest digest; empty for docker archives, which
	// do not keep manifests.
	Digest    string       `json:"digest,omitempty"`
	MediaType string       `json:"mediaType,omitempty"`
	Platform  *v1.Platform `json:"platform,omitempty"`
	Layers    int          `json:"layers"`
	// Size is the bytes of config and layers as stored.
	Size int64 `json:"size,omitempty"`
	// Missing lists layers whose blobs are not stored (skipped foreign layers).
	Missing int `json:"missingLayers,omitempty"`
	// SourceIndex is the digest of the manifest list or OCI index the image
	// was chosen from, when the bundle keeps it (AnnotationSourceDigest).
	SourceIndex string `json:"sourceIndex,omitempty"`
}

// Images lists the images the metadata describes: from index.json when
// present (it keeps manifest digests), else from manifest.json.
func (c *Contents) Images() []ImageInfo {
	if c.Index != nil && len(c.Index.Manifests) > 0 {
		return c.ociImages()
	}
	return c.dockerImages()
}

func (c *Contents) ociImages() []ImageInfo {
	var out []ImageInfo
	for _, d := range c.Index.Manifests {
		info := ImageInfo{Digest: d.Digest.String(), MediaType: string(d.MediaType), Platform: d.Platform,
			SourceIndex: d.Annotations[AnnotationSourceDigest]}
		if n := d.Annotations[AnnotationContainerdName]; n != "" {
			info.Names = []string{n}
		} else if n := d.Annotations[AnnotationRefName]; n != "" {
			info.Names = []string{n}
		}
		if m, ok := c.manifest(BlobPath(d.Digest)); ok {
			info.Size = m.Config.Size
			for _, l := range m.Layers {
				info.Layers++
				info.Size += l.Size
				if c.Complete {
					if _, ok := c.Sizes[BlobPath(l.Digest)]; !ok {
						info.Missing++
					}
				}
			}
			if info.Platform == nil {
				info.Platform = c.configPlatform(BlobPath(m.Config.Digest))
			}
		}
		out = append(out, info)
	}
	return out
}

// manifest returns what Images needs of a stored manifest, parsed.
func (c *Contents) manifest(name string) (*listManifest, bool) {
	if m, ok := c.parsed[name]; ok {
		return m, true
	}
	raw, ok := c.Small[name]
	if !ok {
		return nil, false
	}
	m, err := parseListManifest(raw)
	return m, err == nil
}

func (c *Contents) dockerImages() []ImageInfo {
	var out []ImageInfo
	for _, dm := range c.Docker {
		cfg := path.Clean(dm.Config)
		info := ImageInfo{Names: append([]string(nil), dm.RepoTags...), Layers: len(dm.Layers), Size: c.Sizes[cfg]}
		sort.Strings(info.Names)
		for _, l := range dm.Layers {
			info.Size += c.Sizes[path.Clean(l)]
		}
		info.Platform = c.configPlatform(cfg)
		out = append(out, info)
	}
	return out
}

func (c *Contents) configPlatform(name string) *v1.Platform {
	raw, ok := c.Small[name]
	if !ok {
		return nil
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	return cf.Platform()
}
