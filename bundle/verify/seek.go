package verify

import (
	"io"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/internal/inflate"
	"github.com/rancher/ferry/reorder/tarscan"
)

// offsetTar returns the archive's tar stream for reading by offset when it
// is a file (an io.ReaderAt and io.Seeker) holding a plain tar or a zstd
// stream with a seek table, a ferry bundle: each layer is then read, and
// its frames decoded, by a worker of its own from its offset, while the tar
// reader seeks past it, so no single stream holds every layer up (but see
// sectionFor for layers in long-window frames). It
// returns nil for gzip and table-less zstd, whose offsets mean nothing,
// and for pipes, leaving src's offset where it was.
func offsetTar(src *sourceReader) *bundle.OffsetTar {
	sk, ok := src.r.(io.Seeker)
	if _, at := src.r.(io.ReaderAt); !ok || !at {
		return nil
	}
	base, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	end, err := sk.Seek(0, io.SeekEnd)
	if _, back := sk.Seek(base, io.SeekStart); err != nil || back != nil || end < base {
		return nil
	}
	t, err := bundle.OpenOffsetTar(io.NewSectionReader(src, base, end-base), end-base)
	if err != nil {
		return nil // read as a stream, which reports what is wrong
	}
	return t
}

// firstRead is how much of an entry the tar reader reads itself: enough
// to tell metadata from a layer, when a worker reads the rest by offset,
// and a whole chunk otherwise.
func (v *verifier) firstRead() int {
	if v.seek != nil {
		return inflate.SniffLen
	}
	return inflate.ChunkSize
}

// sectionFor returns the rest of te, past the n bytes the scanner has
// read, as a reader of its own, or nil to read it through the scanner:
// when the archive is not read by offset, when the entry ends in what was
// read, when it runs past the end of the archive, so that the scanner
// reports the truncation where it is, or when it lies in a long-window
// frame.
func (v *verifier) sectionFor(te *tarscan.Entry, n int) io.ReadCloser {
	size := te.Size()
	if v.seek == nil || size <= int64(n) {
		return nil
	}
	if te.DataOffset+size > v.seek.Size() {
		return nil
	}
	// In a long-window frame the scanner, which decodes the frame anyway
	// for the headers in it, reads the entry on its way: a worker of its
	// own would decode the frame again from its start.
	if v.seek.Forward(te.DataOffset+int64(n), size-int64(n)) {
		return nil
	}
	return v.seek.Section(te.DataOffset+int64(n), size-int64(n))
}
