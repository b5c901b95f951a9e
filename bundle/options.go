package bundle

import (
	"errors"
	"fmt"
)

var (
	// ErrBadLevel is returned for a compression level the codec does not have.
	ErrBadLevel = errors.New("invalid compression level")
	// ErrNilArgument is returned when a required writer, source or option is nil.
	ErrNilArgument = errors.New("nil argument")
)

// Option configures Write and WriteImages. An option given a value that
// cannot work returns an error, which Write returns before writing anything.
type Option func(*options) error

type options struct {
	compression   Compression
	level         int
	skipForeign   bool
	blobsVerified bool
	spillDir      string
	strongWorkers int // jobs compressing long-window frames; 0 for the default
}

func makeOptions(opts []Option) (options, error) {
	o := options{compression: None}
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: bundle option", ErrNilArgument)
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// WithCompression compresses the tar stream; level 0 is the codec default.
// zstd takes levels 1..22, gzip 1..9, and None only 0.
func WithCompression(c Compression, level int) Option {
	return func(o *options) error {
		if err := CheckCompression(c, level); err != nil {
			return err
		}
		o.compression, o.level = c, level
		return nil
	}
}

// CheckCompression reports whether NewCompressor and WithCompression accept
// c at level, so a caller can refuse a bad pair before any work.
func CheckCompression(c Compression, level int) error {
	var maxLevel int
	switch c {
	case None:
	case Gzip:
		maxLevel = 9
	case Zstd:
		maxLevel = 22
	default:
		return fmt.Errorf("%w %q: use zstd, gzip or none", ErrUnknownCompression, c)
	}
	if level < 0 || level > maxLevel {
		if c == None {
			return fmt.Errorf("%w: %d: an uncompressed bundle takes no level", ErrBadLevel, level)
		}
		return fmt.Errorf("%w: %s takes 1..%d (0 for its default), not %d", ErrBadLevel, c, maxLevel, level)
	}
	return nil
}

// WithSkipForeignLayers leaves non-distributable layers out of the bundle,
// keeping their descriptors (with URLs) in the manifests.
func WithSkipForeignLayers(skip bool) Option {
	return func(o *options) error { o.skipForeign = skip; return nil }
}

// WithBlobsVerified says the Blobs source checks digests itself, as
// registry.Fetcher does (on download, and again for blobs already cached), so
// Write checks only sizes instead of hashing every layer a second time.
func WithBlobsVerified(verified bool) Option {
	return func(o *options) error { o.blobsVerified = verified; return nil }
}

// WithSpillDir sets where zstd compression by content (level 0) keeps the
// input of the long-window frames it compresses in parallel: temp files of
// up to 128 MiB per frame in flight, unlinked as soon as they are created.
// Give the output's directory; the default is os.TempDir().
func WithSpillDir(dir string) Option {
	return func(o *options) error { o.spillDir = dir; return nil }
}
