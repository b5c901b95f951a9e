package verify_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/registry/platform"
)

func corpusCase(t *testing.T, name string) verifytest.Case {
	t.Helper()
	for _, tc := range verifytest.Corpus() {
		if tc.Name == name {
			return tc
		}
	}
	t.Fatalf("no corpus case %q", name)
	return verifytest.Case{}
}

// TestModes: a blob's digest and size are checked in both modes, so both
// catch a flipped byte or a short layer; only the full mode decompresses
// layers, so only it catches a layer whose digest is right but whose
// contents are not what its config's diff_id says.
func TestModes(t *testing.T) {
	both := []string{"flipped bit in layer", "flipped bit in layer, zstd", "layer shorter than its descriptor", "layer neither gzip nor tar"}
	fullOnly := []string{"wrong diff_id", "corrupt gzip layer", "gzip bomb layer"}
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		for _, name := range both {
			t.Run(string(mode)+"/"+name, func(t *testing.T) {
				tc := corpusCase(t, name)
				rep := verifyData(t, tc.Data, verify.WithMode(mode))
				if rep.Mode != mode || rep.OK() || !mentions(rep, tc.Check, tc.Mention) {
					t.Fatalf("mode %q: want a failed %q check on %s; problems:\n%s", rep.Mode, tc.Check, tc.Mention, problems(rep))
				}
			})
		}
	}
	for _, name := range fullOnly {
		t.Run("full-only/"+name, func(t *testing.T) {
			tc := corpusCase(t, name)
			if rep := verifyData(t, tc.Data); rep.Mode != verify.ModeFull || !mentions(rep, "diff-id", tc.Mention) {
				t.Fatalf("full mode (%q) passes it; problems:\n%s", rep.Mode, problems(rep))
			}
			rep := verifyData(t, tc.Data, verify.WithMode(verify.ModeDigests))
			if !rep.OK() || len(rep.Problems()) != 0 {
				t.Fatalf("digests-only fails it:\n%s", problems(rep))
			}
			for _, c := range rep.Checks {
				if c.Name == "diff-id" {
					t.Fatalf("digests-only reports a diff-id check on a compressed layer: %s", c)
				}
			}
		})
	}
}

func TestModeOption(t *testing.T) {
	_, err := verify.Archive(context.Background(), bytes.NewReader(nil), verify.WithMode("fast"))
	if !errors.Is(err, verify.ErrInvalidOption) {
		t.Fatalf("WithMode(fast): %v", err)
	}
}

// TestModesMetadataChecks: expectations need only configs, so the
// digests-only mode checks them as the full mode does.
func TestModesMetadataChecks(t *testing.T) {
	blobs := verifytest.Blobs{}
	data := write(t, twoImages(t, blobs), blobs, bundle.WithCompression(bundle.Zstd, 0))
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		rep := verifyData(t, data, verify.WithMode(mode), verify.WithExpectedImages([]string{"docker.io/rancher/absent:v1"}, false),
			verify.WithPlatform(platform.Target{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}))
		if !mentions(rep, "expected-image", "absent") || !mentions(rep, "platform", "linux/amd64") {
			t.Fatalf("%s: problems:\n%s", mode, problems(rep))
		}
	}
}

// frameEnds returns where each frame of a seek-table zstd stream ends,
// read from the table at its end.
func frameEnds(t *testing.T, data []byte) []int {
	t.Helper()
	foot := data[len(data)-9:]
	n := int(binary.LittleEndian.Uint32(foot))
	entry := 8
	if foot[4]&0x80 != 0 {
		entry = 12
	}
	table := data[len(data)-9-n*entry : len(data)-9]
	var ends []int
	at := 0
	for i := 0; i < n; i++ {
		at += int(binary.LittleEndian.Uint32(table[i*entry:]))
		ends = append(ends, at)
	}
	return ends
}

// TestSeekTableFrames: a ferry bundle is read by offset, each layer's
// frames by its own worker, yet a frame whose checksum fails still fails
// the archive in both modes, as it would fail `zstd -d` and every loader;
// the intact bundle verifies.
func TestSeekTableFrames(t *testing.T) {
	blobs := verifytest.Blobs{}
	layer := verifytest.GzipLayer(verifytest.TarLayer(7, 6<<20))
	img := verifytest.Image("docker.io/rancher/frames:v1", "v1", v1.Platform{OS: "linux", Architecture: "amd64"}, []verifytest.Layer{layer}, blobs)
	data := write(t, []bundle.Image{img}, blobs, bundle.WithCompression(bundle.Zstd, 0))
	ends := frameEnds(t, data)
	if len(ends) < 4 {
		t.Fatalf("%d frames", len(ends))
	}
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		if rep := verifyData(t, data, verify.WithMode(mode)); !rep.OK() || rep.Compression != bundle.Zstd {
			t.Fatalf("%s: intact bundle: %s\n%s", mode, rep.Compression, problems(rep))
		}
		// The last byte of a layer frame's checksum: its content decodes
		// as before, so only the frame check can tell.
		for _, at := range []int{ends[len(ends)/2] - 1, ends[0] - 1, ends[len(ends)-2] - 1} {
			bad := bytes.Clone(data)
			bad[at] ^= 0x01
			rep := verifyData(t, bad, verify.WithMode(mode))
			if rep.OK() || !mentions(rep, "archive", "frame") {
				t.Fatalf("%s: checksum byte %d flipped: problems:\n%s", mode, at, problems(rep))
			}
		}
	}
}

// TestSeekTableNotAFile: read from a pipe, the same bundle goes through
// the stream and verifies the same way.
func TestSeekTableNotAFile(t *testing.T) {
	blobs := verifytest.Blobs{}
	data := write(t, twoImages(t, blobs), blobs, bundle.WithCompression(bundle.Zstd, 0))
	for _, mode := range []verify.Mode{verify.ModeFull, verify.ModeDigests} {
		rep, err := verify.Archive(context.Background(), io.MultiReader(bytes.NewReader(data)), verify.WithMode(mode))
		if err != nil || !rep.OK() || rep.Bytes == 0 {
			t.Fatalf("%s: %v %s", mode, err, problems(rep))
		}
		byOffset := verifyData(t, data, verify.WithMode(mode))
		if byOffset.Bytes != rep.Bytes || len(byOffset.Checks) != len(rep.Checks) {
			t.Fatalf("%s: by offset %d bytes, %d checks; as a stream %d bytes, %d checks", mode, byOffset.Bytes, len(byOffset.Checks), rep.Bytes, len(rep.Checks))
		}
	}
}
