package reorder

import (
	"archive/tar"
	"fmt"
	"io"

	"github.com/rancher/ferry/reorder/tarscan"
)

// Bulk is the rank of entries that are not metadata. Every rank at or above
// it means the same: the entry keeps its place among the other bulk entries.
const Bulk = 100

// HeadSize is how many leading content bytes a RankFunc is shown.
const HeadSize = 512

// RankFunc orders entries: lower ranks first, ties keep their original
// order, and ranks at or above Bulk stay where they are after the metadata.
// head holds the first min(h.Size, HeadSize) content bytes of a regular
// file and is empty for everything else. It must not retain h or head.
type RankFunc func(h *tar.Header, head []byte) int

// FrameEnder is implemented by compressing writers that can finish the
// current frame and start another, such as bundle.Compressor. Reorder ends a
// frame right after the metadata entries, so they decode on their own.
type FrameEnder interface {
	EndFrame() error
}

// Option configures Reorder and File. An option given a value that cannot
// work makes Reorder or File return an error before reading anything.
type Option func(*options) error

type options struct {
	rank     RankFunc
	reopen   func() (io.ReadCloser, error)
	spillDir string
	limits   tarscan.Limits
	bufSize  int

	// File only.
	compression string
	stdin       io.Reader
	progress    io.Writer
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		rank:    func(*tar.Header, []byte) int { return Bulk },
		limits:  tarscan.DefaultLimits,
		bufSize: 1 << 20,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidArgument)
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithRank sets how entries are ranked. Without it every entry is Bulk and
// the output is the input with a normalised end-of-archive marker.
func WithRank(f RankFunc) Option {
	return func(o *options) error {
		if f != nil {
			o.rank = f
		}
		return nil
	}
}

// WithReopen lets Reorder read a non-seekable input a second time instead of
// spilling it to disk: open must return the same tar stream from its start
// (for a compressed file: open and decompress it again). Metadata entries
// are held in memory between the passes, up to WithMaxMetadata. File sets
// it itself when its Codec says rereading is faster.
func WithReopen(open func() (io.ReadCloser, error)) Option {
	return func(o *options) error { o.reopen = open; return nil }
}

// WithSpillDir sets where a non-seekable input is spilled when there is no
// WithReopen. Reorder defaults to os.TempDir(), File to the output's
// directory, so that the spill lands on the filesystem that must hold the
// result anyway.
func WithSpillDir(dir string) Option {
	return func(o *options) error { o.spillDir = dir; return nil }
}

// WithMaxEntries bounds the number of entries (default
// tarscan.DefaultLimits.Entries). n must be at least 1.
func WithMaxEntries(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: max entries %d: at least 1", ErrInvalidArgument, n)
		}
		o.limits.Entries = n
		return nil
	}
}

// WithMaxMetadata bounds the bytes of all the entries ranked below Bulk
// together (default tarscan.DefaultLimits.Buffered; one such entry may have
// at most tarscan.DefaultMetadataEntry): what is held in memory when the
// input is read twice. It applies however the input is read, so the verdict
// does not depend on the strategy. n must be at least 1.
func WithMaxMetadata(n int64) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: max metadata %d bytes: at least 1", ErrInvalidArgument, n)
		}
		o.limits.Buffered = n
		return nil
	}
}
