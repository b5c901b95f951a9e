package bundle

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// cachedFrame is the largest frame a seek-table stream's ReadAt decodes
// whole and keeps in its frame cache. The frame cache decodes a frame
// whole to read any byte of it, which suits the metadata frame and the
// small header frames a scan goes through; the long-window frames of
// compression by content (up to strongFrame) hold many headers each, and
// are read forward through one streaming decoder instead, so that a scan
// decodes each of them once and memory stays at the decoder's window.
const cachedFrame = 16 << 20

// tableAt reads a seek-table stream by offset: small frames through the
// frame cache, larger ones through a forward section.
type tableAt struct {
	small *frameCache
	f     *frames
	mu    sync.Mutex
	long  *section // over the whole stream, made on first use
}

func (t *tableAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		abs := uint64(off) + uint64(n)
		e, ok := t.f.table.EntryByDecompressedOffset(abs)
		if !ok {
			return n, io.EOF
		}
		chunk := p[n:min(uint64(len(p)), uint64(n)+e.DecompressedOffset+uint64(e.DecompressedSize)-abs)]
		var k int
		var err error
		if e.DecompressedSize <= cachedFrame {
			k, err = t.small.ReadAt(chunk, e, abs)
		} else {
			k, err = t.readLong(chunk, int64(abs))
		}
		n += k
		if k == len(chunk) && errors.Is(err, io.EOF) {
			err = nil // the end of a frame, not of the stream
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *tableAt) readLong(p []byte, off int64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.long == nil {
		t.long = &section{f: t.f, n: int64(t.f.table.Size())}
	}
	if _, err := t.long.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(t.long, p)
}

// Close releases the forward decoder and the frame cache's.
func (t *tableAt) Close() error {
	t.mu.Lock()
	if t.long != nil {
		t.long.release()
	}
	t.mu.Unlock()
	t.small.Close()
	return nil
}
