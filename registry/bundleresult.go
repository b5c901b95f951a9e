package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/rancher/ferry/bundle"
)

// BundleResult describes a bundle WriteBundles has written: what a release
// publishes beside it (size, checksum, image list).
type BundleResult struct {
	Path        string
	Compression bundle.Compression
	Size        int64
	// SHA256 is the hex digest of the file's bytes, as sha256sum prints it.
	SHA256 string
	// Images are the images written, in the order of the refs.
	Images []bundle.Image
}

// WithBundleResult calls fn after each bundle is in place with its size,
// checksum and images. The checksum is taken as the bytes are written, so
// the file is not read again.
func WithBundleResult(fn func(BundleResult)) PullOption {
	return func(o *pullOptions) error { o.result = fn; return nil }
}

// summer passes writes on while counting and hashing them.
type summer struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newSummer(w io.Writer) *summer { return &summer{w: w, h: sha256.New()} }

func (s *summer) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	return n, err
}

func (s *summer) result(path string, c bundle.Compression, images []bundle.Image) BundleResult {
	return BundleResult{Path: path, Compression: c, Size: s.n, SHA256: hex.EncodeToString(s.h.Sum(nil)), Images: images}
}
