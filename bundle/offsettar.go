package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// maxIdleDecoders bounds the frame decoders an OffsetTar keeps for reuse:
// one per section read at once, as a few workers and a tar reader do.
const maxIdleDecoders = 8

// ErrNotSeekable is returned by OpenOffsetTar for an archive whose tar
// stream can only be read from the start: gzip, or zstd without a seek
// table.
var ErrNotSeekable = errors.New("archive cannot be read by offset")

// OffsetTar is the tar stream of an archive that can be read at any offset
// without decompressing what precedes it: a plain tar, or a zstd stream
// with a seek table (a ferry bundle). Unlike Archive's reads, which trust
// blobs' digests to catch damage, its sections check every zstd frame they
// read to its end against its checksum and the table's length, and
// CheckFrames checks the frames no section read, so that a reader that
// uses it misses no damaged frame a loader decompressing the whole stream
// would trip on.
//
// Sections may be read concurrently.
type OffsetTar struct {
	t *tarAt
}

// OpenOffsetTar opens the tar stream in ra, of size bytes, for reading by
// offset, or returns ErrNotSeekable.
func OpenOffsetTar(ra io.ReaderAt, size int64) (*OffsetTar, error) {
	if ra == nil {
		return nil, fmt.Errorf("%w: OpenOffsetTar needs a ReaderAt", ErrNilArgument)
	}
	t, err := openTarAt(ra, size)
	if err != nil {
		return nil, err
	}
	switch {
	case t.frames != nil:
		t.frames.checked = make([]atomic.Bool, t.frames.table.NumFrames())
		t.frames.idle = make(chan *zstd.Decoder, maxIdleDecoders)
	case t.compression != None:
		return nil, fmt.Errorf("%w: %s without a seek table", ErrNotSeekable, t.compression)
	}
	return &OffsetTar{t: t}, nil
}

// Compression is the archive's codec: None or Zstd.
func (o *OffsetTar) Compression() Compression { return o.t.compression }

// Size is the length of the tar stream.
func (o *OffsetTar) Size() int64 { return o.t.size }

// Section returns a reader of n bytes of the tar stream from off, which
// also seeks within them. Close it when done: that checks the rest of the
// last frame it read.
func (o *OffsetTar) Section(off, n int64) io.ReadSeekCloser { return o.t.section(off, n) }

// Forward reports whether the n bytes of the tar stream from off are best
// read in order with the bytes before them, by whatever reads the stream
// forward, rather than by a Section of their own: some of them lie in a
// long-window frame (compression by content puts compressible entries in
// frames that span many entries), which a Section would decode from the
// frame's start, again for every entry in it. The fast frames, which hold
// at most one entry's data each, and a plain tar, are read by Sections.
func (o *OffsetTar) Forward(off, n int64) bool {
	f := o.t.frames
	if f == nil || off < 0 || n <= 0 {
		return false
	}
	e, ok := f.table.EntryByDecompressedOffset(uint64(off))
	for ok && e.DecompressedOffset < uint64(off+n) {
		if e.DecompressedSize > zstdChunk {
			return true
		}
		e, ok = f.table.EntryByID(e.ID + 1)
	}
	return false
}

// Inflated returns how many bytes of the tar stream the sections and
// CheckFrames have produced so far (decompressed, or read from a plain
// tar), for tests and profiling.
func (o *OffsetTar) Inflated() int64 { return o.t.inflated.Load() }

// CheckFrames decodes and checks every frame that no section has read to
// its end, and returns the first frame that failed a check, here or in a
// section: what `zstd -d` of the whole archive would have failed on.
func (o *OffsetTar) CheckFrames(ctx context.Context) error {
	f := o.t.frames
	if f == nil {
		return nil
	}
	for id := range f.checked {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.checked[id].Load() {
			continue
		}
		if err := f.checkFrame(int64(id)); err != nil {
			break
		}
	}
	if err := f.failed.Load(); err != nil {
		return *err
	}
	return nil
}
