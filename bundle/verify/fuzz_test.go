package verify_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/registry/platform"
)

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set FERRY_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	if err := verifytest.WriteFuzzSeeds(filepath.Join("testdata", "fuzz", "FuzzVerify")); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerify: no input may crash Archive or make it return an error (a
// bytes.Reader has no I/O errors), and an archive that verifies must
// describe at least one image, all of them good.
func FuzzVerify(f *testing.F) {
	for _, data := range verifytest.FuzzSeeds() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := verify.Archive(context.Background(), bytes.NewReader(data), verify.WithJobs(2),
			verify.WithExpectedImages([]string{"rancher/tiny:1"}, false),
			verify.WithPlatform(platform.Target{Platform: v1.Platform{OS: "windows", Architecture: "amd64"}}))
		if err != nil || rep == nil {
			t.Fatalf("Verify: %v", err)
		}
		if !rep.OK() {
			return
		}
		if len(rep.Images) == 0 {
			t.Fatalf("verified an archive with no images: %+v", rep)
		}
		for _, img := range rep.Images {
			if !img.OK {
				t.Fatalf("report OK but image %v is not", img.Names)
			}
		}
	})
}
