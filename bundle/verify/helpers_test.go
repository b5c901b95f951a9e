package verify_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/verifytest"
)

// twoImages are verifytest.WindowsPair.
func twoImages(t testing.TB, blobs verifytest.Blobs) []bundle.Image {
	return verifytest.WindowsPair(t, blobs)
}

func write(t testing.TB, images []bundle.Image, blobs bundle.Blobs, opts ...bundle.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 0 {
		t.Fatalf("%d files left in %s", len(es), dir)
	}
}
