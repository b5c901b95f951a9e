package bundle_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func offsetBundle(t *testing.T, c bundle.Compression) []byte {
	t.Helper()
	blobs := verifytest.Blobs{}
	layer := verifytest.GzipLayer(verifytest.TarLayer(3, 5<<20))
	img := verifytest.Image("docker.io/rancher/offset:v1", "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, []verifytest.Layer{layer}, blobs)
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, []bundle.Image{img}, blobs, bundle.WithCompression(c, 0)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lastFrameEnd is where the last frame before the seek table ends.
func lastFrameEnd(data []byte) int {
	foot := data[len(data)-9:]
	n := int(binary.LittleEndian.Uint32(foot))
	entry := 8
	if foot[4]&0x80 != 0 {
		entry = 12
	}
	return len(data) - 9 - n*entry - 8
}

func TestOpenOffsetTar(t *testing.T) {
	for _, c := range []bundle.Compression{bundle.None, bundle.Zstd} {
		data := offsetBundle(t, c)
		o, err := bundle.OpenOffsetTar(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if o.Compression() != c {
			t.Fatalf("compression %s, want %s", o.Compression(), c)
		}
		// The same bytes as decompressing the whole stream.
		rc, _, err := bundle.Decompress(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(rc)
		s := o.Section(0, o.Size())
		got, err := io.ReadAll(s)
		if err != nil || s.Close() != nil || !bytes.Equal(got, want) || o.Size() != int64(len(want)) {
			t.Fatalf("%s: section of %d bytes (err %v), stream of %d", c, len(got), err, len(want))
		}
		if err := o.CheckFrames(context.Background()); err != nil {
			t.Fatalf("%s: CheckFrames: %v", c, err)
		}
	}
	gz := offsetBundle(t, bundle.Gzip)
	if _, err := bundle.OpenOffsetTar(bytes.NewReader(gz), int64(len(gz))); !errors.Is(err, bundle.ErrNotSeekable) {
		t.Fatalf("gzip: %v", err)
	}
}

// TestOffsetTarCheckFrames: a frame no section read is still checked, so a
// damaged checksum anywhere is found, as `zstd -d` would find it.
func TestOffsetTarCheckFrames(t *testing.T) {
	data := offsetBundle(t, bundle.Zstd)
	data[lastFrameEnd(data)-1] ^= 0x01 // the last frame's checksum
	o, err := bundle.OpenOffsetTar(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Reading only the start checks only the frames read.
	s := o.Section(0, 512)
	if _, err := io.Copy(io.Discard, s); err != nil || s.Close() != nil {
		t.Fatalf("reading the first header: %v", err)
	}
	if err := o.CheckFrames(context.Background()); !errors.Is(err, bundle.ErrBadSeekTable) {
		t.Fatalf("CheckFrames: %v", err)
	}
}
