package bundle_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/rancher/ferry/bundle"
)

// TestOpenChecksFrameChecksums damages the seek table's checksum of each
// frame in turn: the frames Open reads whole (metadata and headers) must
// fail the check, as the seekable format's reader made them fail.
func TestOpenChecksFrameChecksums(t *testing.T) {
	blobs := newMemBlobs()
	out := write(t, twoImages(t, blobs), blobs, bundle.WithCompression(bundle.Zstd, 0))
	n := int(binary.LittleEndian.Uint32(out[len(out)-9:]))
	entries := len(out) - 9 - 12*n
	failed := 0
	for id := 0; id < n; id++ {
		bad := bytes.Clone(out)
		bad[entries+12*id+8] ^= 0x01 // the low byte of frame id's checksum
		a, err := bundle.Open(context.Background(), bytes.NewReader(bad), int64(len(bad)))
		if err == nil {
			a.Close()
			continue
		}
		if !errors.Is(err, bundle.ErrBadSeekTable) {
			t.Errorf("frame %d: %v, want ErrBadSeekTable", id, err)
		}
		failed++
	}
	// The metadata frame and one header frame per layer at least.
	if failed < 3 {
		t.Errorf("%d of %d damaged checksums failed Open", failed, n)
	}
}
