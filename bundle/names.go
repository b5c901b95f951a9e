package bundle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrBadName is returned for an Image whose Name is not a reference, or
// whose Tag is not the tag Name ends with.
var ErrBadName = errors.New("invalid image name")

// checkName holds an Image to what plan relies on: Name parses, and a
// non-empty Tag is Name's own tag, so Name minus ":"+Tag is its repository.
func checkName(img *Image) error {
	if img.Name == "" {
		return fmt.Errorf("%w: empty name", ErrBadName)
	}
	ref, err := name.ParseReference(img.Name)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrBadName, img.Name, err)
	}
	if img.Tag == "" {
		return nil
	}
	if t, ok := ref.(name.Tag); !ok || t.TagStr() != img.Tag || !strings.HasSuffix(img.Name, ":"+img.Tag) {
		return fmt.Errorf("%w: tag %q is not the tag of %q", ErrBadName, img.Tag, img.Name)
	}
	return nil
}

// RefName is the Name and Tag an Image from ref gets: the registry as
// containerd and k3s spell it (docker.io, not index.docker.io), and the tag
// kept from repo:tag@sha256:… (the digest pinned what was fetched). A
// digest-only reference is named by its digest, with no tag.
func RefName(ref name.Reference) (string, string) {
	repo := familiarRegistry(ref.Context().RegistryStr()) + "/" + ref.Context().RepositoryStr()
	if tag, ok := tagOf(ref); ok {
		return repo + ":" + tag, tag
	}
	return repo + "@" + ref.Identifier(), ""
}

// tagOf finds the tag in repo:tag and in repo:tag@sha256:… alike.
func tagOf(r name.Reference) (string, bool) {
	if t, ok := r.(name.Tag); ok {
		return t.TagStr(), true
	}
	base, _, _ := strings.Cut(r.String(), "@")
	if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
		return base[i+1:], true
	}
	return "", false
}

func familiarRegistry(host string) string {
	if host == name.DefaultRegistry {
		return "docker.io"
	}
	return host
}
