package tarscan

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"
)

// checkType admits what image archives contain. Everything else either
// cannot be extracted safely (devices), changes the meaning of later entries
// (global PAX headers) or hides its real layout from a byte-range copy
// (sparse files, whose map tar.Reader consumes from the data section).
func checkType(h *tar.Header) error {
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("%w %q (type %q)", ErrUnsupportedType, h.Name, h.Typeflag)
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w %q: sparse file", ErrUnsupportedType, h.Name)
		}
	}
	return nil
}

// cleanPath returns name in canonical form ("./a/b/" -> "a/b"), or
// ErrUnsafePath if extracting it could write outside the target directory.
// It rejects any ".." element rather than resolving it: "a/../b" is legal in
// principle but no image tool writes it, and rejecting is simpler to trust.
// Backslashes and drive letters are treated as separators and roots too, so
// an archive that is safe here is safe when ferry runs on Windows.
func cleanPath(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w %q", ErrUnsafePath, name)
	}
	if name[0] == '/' || name[0] == '\\' || (len(name) > 1 && name[1] == ':' && isLetter(name[0])) {
		return "", fmt.Errorf("%w %q: absolute", ErrUnsafePath, name)
	}
	if hasDotDot(name) {
		return "", fmt.Errorf("%w %q: contains ..", ErrUnsafePath, name)
	}
	return path.Clean(name), nil
}

// hasDotDot reports whether an element of name, split at either
// separator, is "..": what strings.FieldsFunc(name, isSeparator) would
// find, without building the slice for every entry of the archive.
func hasDotDot(name string) bool {
	for start := 0; start < len(name); {
		end := strings.IndexAny(name[start:], `/\`)
		if end < 0 {
			end = len(name)
		} else {
			end += start
		}
		if name[start:end] == ".." {
			return true
		}
		start = end + 1
	}
	return false
}

func isSeparator(r rune) bool { return r == '/' || r == '\\' }

func isLetter(b byte) bool { return 'a' <= b|0x20 && b|0x20 <= 'z' }

// checkSymlink rejects targets that resolve outside the archive. Targets are
// relative to the link's directory; dangling targets inside the archive are
// allowed (docker save links shared layers across image directories).
func checkSymlink(name, target string) error {
	if target == "" || strings.ContainsRune(target, 0) {
		return fmt.Errorf("%w: %q -> %q", ErrUnsafeLink, name, target)
	}
	if target[0] == '/' || target[0] == '\\' || (len(target) > 1 && target[1] == ':' && isLetter(target[0])) {
		return fmt.Errorf("%w: %q -> %q is absolute", ErrUnsafeLink, name, target)
	}
	depth := strings.Count(path.Dir(name), "/") + 1
	if path.Dir(name) == "." {
		depth = 0
	}
	for _, elem := range strings.FieldsFunc(target, isSeparator) {
		switch elem {
		case ".":
		case "..":
			depth--
		default:
			depth++
		}
		if depth < 0 {
			return fmt.Errorf("%w: %q -> %q", ErrUnsafeLink, name, target)
		}
	}
	return nil
}
