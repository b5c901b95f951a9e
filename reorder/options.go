package reorder

import (
	"archive/tar"
	"errors"
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

// Option configures Reorder and File. An option given a value it cannot
// use makes Reorder or File return an error.
type Option func(*options)

type options struct {
	rank     RankFunc
	reopen   func() (io.ReadCloser, error)
	spillDir string
	limits   tarscan.Limits
	bufSize  int
	err      error

	// File only.
	compression string
	stdin       io.Reader
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		rank:    func(*tar.Header, []byte) int { return Bulk },
		limits:  tarscan.DefaultLimits,
		bufSize: 1 << 20,
	}
	for _, opt := range opts {
		opt(o)
	}
	return o, o.err
}

// fail records the first invalid option.
func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithRank sets how entries are ranked. Without it every entry is Bulk and
// the output is the input with a normalised end-of-archive marker.
func WithRank(f RankFunc) Option {
	return func(o *options) {
		if f == nil {
			o.fail(errors.New("reorder: nil RankFunc"))
			return
		}
		o.rank = f
	}
}

// WithReopen lets Reorder read a non-seekable input a second time instead of
// spilling it to disk: open must return the same tar stream from its start
// (for a compressed file: open and decompress it again). Metadata entries
// are held in memory between the passes, up to WithMaxMetadata. File sets
// it itself when its Codec says rereading is faster.
func WithReopen(open func() (io.ReadCloser, error)) Option {
	return func(o *options) { o.reopen = open }
}

// WithSpillDir sets where a non-seekable input is spilled when there is no
// WithReopen. Reorder defaults to os.TempDir(), File to the output's
// directory, so that the spill lands on the filesystem that must hold the
// result anyway.
func WithSpillDir(dir string) Option {
	return func(o *options) { o.spillDir = dir }
}

// WithMaxEntries bounds the number of entries (default
// tarscan.DefaultLimits.Entries).
func WithMaxEntries(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.fail(fmt.Errorf("reorder: max entries %d: must be positive", n))
			return
		}
		o.limits.Entries = n
	}
}

// WithMaxMetadata bounds the bytes of the entries ranked below Bulk, header
// blocks and padding included (default tarscan.DefaultLimits.Buffered): the
// bytes held in memory when the input is read twice. It applies however the
// input is read, so the verdict does not depend on the strategy.
func WithMaxMetadata(n int64) Option {
	return func(o *options) {
		if n <= 0 {
			o.fail(fmt.Errorf("reorder: max metadata %d: must be positive", n))
			return
		}
		o.limits.Buffered = n
	}
}
