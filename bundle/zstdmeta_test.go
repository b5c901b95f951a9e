package bundle

import (
	"bytes"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestMetadataFramesUseTheSmallWindow: compressible metadata, however
// large, is framed with metaWindow, and only what follows the metadata
// gets the full window (and the strongest level's memory).
func TestMetadataFramesUseTheSmallWindow(t *testing.T) {
	var out bytes.Buffer
	p, err := newParallelZstd(&out, 0, options{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0123"}`+"\n", (3*zstdChunk)/84))
	p.metadata(true)
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	metaEnd := out.Len()
	if p.auto.enc != nil || p.auto.metaEnc == nil {
		t.Fatalf("metadata made the full-window encoder (%v) or not the metadata one (%v)", p.auto.enc != nil, p.auto.metaEnc != nil)
	}
	p.metadata(false)
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	if h.WindowSize > metaWindow {
		t.Errorf("metadata frame window %d, want at most %d", h.WindowSize, metaWindow)
	}
	if err := h.Decode(out.Bytes()[metaEnd:]); err != nil {
		t.Fatal(err)
	}
	if h.WindowSize != MaxZstdWindow {
		t.Errorf("layer frame window %d, want %d", h.WindowSize, MaxZstdWindow)
	}
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxZstdWindow))
	defer dec.Close()
	got, err := dec.DecodeAll(out.Bytes(), nil)
	if err != nil || !bytes.Equal(got, append(append([]byte{}, data...), data...)) {
		t.Fatalf("round trip: %v, %d bytes of %d", err, len(got), 2*len(data))
	}
}
