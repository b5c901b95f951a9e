package bundle_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
)

// TestZstdSeekTable checks that a zstd bundle ends with a seek table that
// describes every frame, that plain zstd readers pass over it, and that each
// layer's header (with the data's first bytes) and the rest of its data
// start frames of their own.
func TestZstdSeekTable(t *testing.T) {
	blobs := newMemBlobs()
	out := write(t, twoImages(t, blobs), blobs, bundle.WithCompression(bundle.Zstd, 0))

	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(bundle.MaxZstdWindow))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	plain, err := dec.DecodeAll(out, nil)
	if err != nil {
		t.Fatalf("plain zstd reader: %v", err)
	}
	sr, err := seekable.NewReader(bytes.NewReader(out), dec)
	if err != nil {
		t.Fatalf("no seek table: %v", err)
	}
	table, err := sr.SeekTable()
	if err != nil {
		t.Fatal(err)
	}
	if int(table.Size()) != len(plain) {
		t.Fatalf("seek table covers %d bytes, stream has %d", table.Size(), len(plain))
	}
	if frames, _ := zstdFrames(t, out); int64(len(frames)) != table.NumFrames() {
		t.Fatalf("seek table lists %d frames, stream has %d", table.NumFrames(), len(frames))
	}
	seeked, err := io.ReadAll(io.NewSectionReader(sr, 0, int64(table.Size())))
	if err != nil || !bytes.Equal(seeked, plain) {
		t.Fatalf("seekable read differs from plain read (err %v)", err)
	}
	layers := 0
	startsFrame := func(off int64) bool {
		e, ok := table.EntryByDecompressedOffset(uint64(off))
		return ok && int64(e.DecompressedOffset) == off
	}
	for off := int64(0); ; {
		tr := tar.NewReader(bytes.NewReader(plain[off:]))
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dataAt := off + 512 // ferry writes USTAR headers: one block each
		off = dataAt + (h.Size+511)/512*512
		if !strings.HasPrefix(h.Name, "blobs/") || h.Size < 4096 {
			continue
		}
		layers++
		// The header and the first 512 data bytes (what readers classify
		// an entry by) form a frame; the rest of the data, frames of its own.
		if !startsFrame(dataAt-512) || !startsFrame(dataAt+512) || !startsFrame(off) {
			t.Errorf("layer %s: header at %d, data+512 at %d or its end at %d does not start a frame", h.Name, dataAt-512, dataAt+512, off)
		}
		if startsFrame(dataAt) {
			t.Errorf("layer %s: its data at %d starts a frame apart from its header's", h.Name, dataAt)
		}
	}
	if layers == 0 {
		t.Fatal("no layers checked")
	}
}
