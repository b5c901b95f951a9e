package bundle

import (
	"archive/tar"
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Blobs of 8 GiB and more get a PAX size record, which USTAR cannot hold;
// smaller ones keep plain USTAR headers.
func TestHeaderSizeBeyondUSTAR(t *testing.T) {
	for _, tc := range []struct {
		size int64
		pax  bool
	}{{maxUSTARSize, false}, {maxUSTARSize + 1, true}, {64 << 30, true}} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		h := header(record{name: "blobs/sha256/x", blob: &v1.Descriptor{Size: tc.size}})
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("size %d: %v", tc.size, err)
		}
		got, err := tar.NewReader(bytes.NewReader(buf.Bytes())).Next()
		if err != nil {
			t.Fatalf("size %d: reading back: %v", tc.size, err)
		}
		if got.Size != tc.size {
			t.Errorf("size %d read back as %d", tc.size, got.Size)
		}
		if pax := bytes.Contains(buf.Bytes(), []byte("size=")); pax != tc.pax {
			t.Errorf("size %d: PAX record %v, want %v", tc.size, pax, tc.pax)
		}
	}
}
