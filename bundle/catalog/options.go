package catalog

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Option configures New.
type Option func(*options) error

type options struct {
	prefix     string
	maps       []mapping
	repository string
}

type mapping struct{ from, to string }

func makeOptions(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("catalog: nil option")
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithPrefix puts every repository under a path, such as "mirror".
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		prefix = strings.Trim(prefix, "/")
		if prefix != "" {
			if _, err := name.NewRepository("example.com/" + prefix + "/x"); err != nil {
				return fmt.Errorf("prefix %q: %w", prefix, err)
			}
		}
		o.prefix = prefix
		return nil
	}
}

// WithMap renames repositories that start with the path from to start with
// to instead ("rancher=mirrors/rancher"); the first matching map applies,
// before the prefix.
func WithMap(from, to string) Option {
	return func(o *options) error {
		from, to = strings.Trim(from, "/"), strings.Trim(to, "/")
		if from == "" || to == "" {
			return fmt.Errorf("map %q=%q: both sides must name a repository path", from, to)
		}
		if _, err := name.NewRepository("example.com/" + to); err != nil {
			return fmt.Errorf("map %q=%q: %w", from, to, err)
		}
		o.maps = append(o.maps, mapping{from, to})
		return nil
	}
}

// WithRepository names the images an OCI archive names only by a tag
// (org.opencontainers.image.ref.name "v1", as `skopeo copy … oci-archive:
// FILE:v1` writes) as repo:tag, and those it does not name at all as
// repo@digest; without it they are left out (see Catalog.Unnamed). repo is
// a repository path such as "rancher/app"; maps and the prefix apply to it
// as to any name.
func WithRepository(repo string) Option {
	return func(o *options) error {
		repo = strings.Trim(repo, "/")
		if _, err := name.NewRepository(repo); err != nil {
			return fmt.Errorf("repository %q: give a repository path such as rancher/app: %w", repo, err)
		}
		o.repository = repo
		return nil
	}
}

// rename applies the maps and the prefix to a repository path.
func (o *options) rename(repo string) string {
	for _, m := range o.maps {
		if repo == m.from || strings.HasPrefix(repo, m.from+"/") {
			repo = m.to + strings.TrimPrefix(repo, m.from)
			break
		}
	}
	if o.prefix != "" {
		repo = o.prefix + "/" + repo
	}
	return repo
}
