package bundle_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set FERRY_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	if err := verifytest.WriteFuzzSeeds(filepath.Join("testdata", "fuzz", "FuzzReadContents")); err != nil {
		t.Fatal(err)
	}
}

// FuzzReadContents: no input may crash the metadata reader `ferry list`
// uses, nor what it offers on the contents.
func FuzzReadContents(f *testing.F) {
	for _, data := range verifytest.FuzzSeeds() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := bundle.ReadContents(context.Background(), bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = c.Missing()
		for _, img := range c.Images() {
			if img.Layers < 0 || img.Missing > img.Layers {
				t.Fatalf("image %+v", img)
			}
		}
	})
}
