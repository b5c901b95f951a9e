package verify

import (
	"bufio"
	"bytes"
	"io"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder/tarscan"
)

// seekableTar returns the archive as a section reader when it is a plain
// tar that can be read at any offset, so that layers need not wait for the
// tar reader: each is read from its own offset by a worker, while the tar
// reader seeks past it. It returns nil for compressed archives, whose
// offsets mean nothing, and for pipes, leaving src's offset where it was.
func seekableTar(src *sourceReader) *io.SectionReader {
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
	head := make([]byte, 4)
	n, _ := src.ReadAt(head, base)
	// bundle's detection, so that a zstd stream opening with a skippable
	// frame (pzstd's) is zstd here too.
	if c, err := bundle.DetectCompression(bufio.NewReader(bytes.NewReader(head[:n]))); err != nil || c != bundle.None {
		return nil
	}
	return io.NewSectionReader(src, base, end-base)
}

// sectionFor returns the rest of te, past the n bytes the scanner has
// read, as a reader of its own, or nil to read it through the scanner:
// when the archive is not read by offset, when the entry ends in its first
// chunk, or when it runs past the end of the archive, so that the scanner
// reports the truncation where it is.
func (v *verifier) sectionFor(te *tarscan.Entry, n int) *io.SectionReader {
	size := te.Size()
	if v.seek == nil || size <= int64(n) {
		return nil
	}
	if te.DataOffset+size > v.seek.Size() {
		return nil
	}
	return io.NewSectionReader(v.seek, te.DataOffset+int64(n), size-int64(n))
}
