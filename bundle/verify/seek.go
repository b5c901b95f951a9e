package verify

import (
	"io"
	"strings"

	"github.com/rancher/ferry/bundle/verify/internal/inflate"
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
	if k := inflate.Sniff(head[:n]); k == inflate.KindZstd || k == inflate.KindGzip {
		return nil
	}
	return io.NewSectionReader(src, base, end-base)
}

// sectionFor returns the rest of e, past the n bytes the tar reader has
// read, as a reader of its own, or nil to read e from the tar stream: when
// the archive is not read by offset, when e ends in its first chunk, when
// e is sparse (its bytes are not stored as they read), or when e runs past
// the end of the archive, so that the tar reader reports the truncation
// where it is.
func (v *verifier) sectionFor(e *vEntry, n int) *io.SectionReader {
	if v.seek == nil || e.sparse || e.size <= int64(n) {
		return nil
	}
	pos, err := v.seek.Seek(0, io.SeekCurrent)
	if err != nil || pos+e.size-int64(n) > v.seek.Size() {
		return nil
	}
	return io.NewSectionReader(v.seek, pos, e.size-int64(n))
}

// hasSparseRecords tells PAX sparse files, which a tar reader expands.
func hasSparseRecords(pax map[string]string) bool {
	for k := range pax {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
