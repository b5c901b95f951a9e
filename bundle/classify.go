package bundle

import (
	"archive/tar"
	"bytes"
	"path"
	"strings"

	"github.com/rancher/ferry/reorder"
	"github.com/rancher/ferry/reorder/tarscan"
)

// Metadata ranks, in the order a metadata-first bundle stores them. A loader
// that finds oci-layout, index.json, manifest.json and repositories at the
// front, followed by the configs and manifests they point at, can list a
// bundle from its first few kilobytes.
const (
	RankOCILayout    = 0
	RankIndex        = 1
	RankManifest     = 2
	RankRepositories = 3
	RankSmall        = 4
)

// Layers and everything else that is not metadata rank reorder.Bulk: they
// keep their original order after the metadata.

// MaxSmallMetadata caps what counts as "small JSON": a config or manifest is
// kilobytes, so anything bigger is a layer or data file, whatever it starts with.
const MaxSmallMetadata = tarscan.DefaultMetadataEntry

// MetadataRank is the single definition of what a bundle's metadata is and
// in which order it comes. name is the tar entry name, size its content
// length and head its first bytes (512 is plenty; fewer is fine). Names
// ending in "/" are directories.
//
// Lower ranks come first; reorder.Bulk means "not metadata".
func MetadataRank(name string, size int64, head []byte) int {
	if strings.HasSuffix(name, "/") {
		// Directories hold no bytes; keeping them ahead of the files they
		// contain helps extractors that do not create parents themselves.
		return RankSmall
	}
	clean := cleanName(name)
	switch clean {
	case "oci-layout":
		return RankOCILayout
	case "index.json":
		return RankIndex
	case "manifest.json":
		return RankManifest
	case "repositories":
		return RankRepositories
	}
	switch {
	case size < 0 || size > MaxSmallMetadata:
		return reorder.Bulk
	case isLegacyMetadata(clean):
		return RankSmall
	case looksLikeJSON(head):
		return RankSmall
	}
	return reorder.Bulk
}

// HeaderRank applies MetadataRank to a tar header: directories are ranked as
// directories even without a trailing slash, and links, which have no
// content of their own, by name alone. Its signature is reorder.RankFunc.
func HeaderRank(h *tar.Header, head []byte) int {
	switch h.Typeflag {
	case tar.TypeDir:
		if !strings.HasSuffix(h.Name, "/") {
			return MetadataRank(h.Name+"/", 0, nil)
		}
		return MetadataRank(h.Name, 0, nil)
	case tar.TypeReg:
		return MetadataRank(h.Name, h.Size, head)
	case tar.TypeSymlink, tar.TypeLink:
		return MetadataRank(strings.TrimSuffix(h.Name, "/"), 0, nil)
	}
	return reorder.Bulk
}

// cleanName strips what tar tools add in front ("./", "/") so that
// "./manifest.json" is still the manifest.
func cleanName(name string) string {
	// Most names are clean already; path.Clean then returns them without
	// allocating, and the "/" would change nothing.
	if name != "" && name != "." && name[0] != '/' && !strings.HasPrefix(name, "..") && path.Clean(name) == name {
		return name
	}
	n := path.Clean("/" + name)
	return strings.TrimPrefix(n, "/")
}

// isLegacyMetadata matches docker save's pre-OCI files: <id>/json (the v1
// image JSON) and VERSION, top-level or per layer ("1.0", not JSON).
func isLegacyMetadata(clean string) bool {
	dir, base := path.Split(clean)
	switch base {
	case "VERSION":
		return strings.Count(dir, "/") <= 1
	case "json":
		return strings.Count(dir, "/") == 1
	}
	return false
}

// looksLikeJSON reports whether head opens a JSON object or array. A NUL
// byte rules it out: JSON never contains one, while a tar layer whose first
// file name starts with "{" is full of them.
func looksLikeJSON(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 || (head[0] != '{' && head[0] != '[') {
		return false
	}
	return bytes.IndexByte(head, 0) < 0
}
