package registry

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/reorder/tempfile"
)

// Cache is a content-addressed blob store on disk. Entries are written
// whole or not at all (temp file, then rename), so a present entry of the
// right size is one that passed digest verification on download. Readers
// verify again as they copy, which catches later corruption.
type Cache struct {
	dir string
}

// DefaultCacheDir is ferry's blob cache under the user's cache directory.
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "ferry", "blobs")
}

// cacheTempPattern names downloads in progress, beside the entries.
const cacheTempPattern = ".tmp-*"

// NewCache opens (creating if needed) a blob cache rooted at dir, and
// removes the partial downloads of ferry processes that were killed.
func NewCache(dir string) (*Cache, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: blob cache needs a directory", ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("blob cache %s: %w", dir, err)
	}
	_, _ = tempfile.Sweep(filepath.Join(dir, "sha256"), cacheTempPattern)
	return &Cache{dir: dir}, nil
}

func (c *Cache) path(h v1.Hash) string { return filepath.Join(c.dir, h.Algorithm, h.Hex) }

// Has reports whether the cache holds d at its full size.
func (c *Cache) Has(d v1.Descriptor) bool {
	fi, err := os.Stat(c.path(d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// Open opens a cached blob.
func (c *Cache) Open(d v1.Descriptor) (io.ReadCloser, error) {
	return os.Open(c.path(d.Digest))
}

// create opens a temp file that commit turns into d's entry.
func (c *Cache) create(d v1.Descriptor) (*os.File, error) {
	if c.dir == "" {
		return nil, fmt.Errorf("%w: blob cache made without NewCache", ErrInvalidArgument)
	}
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return nil, fmt.Errorf("blob cache: unsupported digest %q", d.Digest)
	}
	tmp, err := tempfile.Create(filepath.Join(c.dir, "sha256"), cacheTempPattern)
	if err != nil {
		return nil, fmt.Errorf("blob cache: %w", err)
	}
	return tmp, nil
}

// commit publishes a complete temp file as d's entry.
func (c *Cache) commit(tmp string, d v1.Descriptor) (string, error) {
	final := c.path(d.Digest)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("blob cache: %w", err)
	}
	return final, nil
}

// Remove drops an entry, for one that failed verification on use.
func (c *Cache) Remove(h v1.Hash) error {
	err := os.Remove(c.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
