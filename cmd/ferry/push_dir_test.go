package main

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/rancher/ferry/bundle"
)

// An OCI layout directory pushes like an archive. An image it names only
// by a tag is left out with a warning saying how to name it, and
// --repository names it.
func TestPushOCIDirectoryAndBareTags(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	named, bare := randomImg(t), randomImg(t)
	if err := p.AppendImage(named, layout.WithAnnotations(map[string]string{bundle.AnnotationRefName: "example.com/rancher/app:v2"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(bare, layout.WithAnnotations(map[string]string{bundle.AnnotationRefName: "v1"})); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	dst := strings.TrimPrefix(srv.URL, "http://")

	code, _, stderr := ferry(t, "push", dir, "--registry", dst, "--insecure-registry", dst, "-q")
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	if got, want := headDigest(t, dst, dst+"/rancher/app:v2"), digestOf(t, named); got != want {
		t.Fatalf("rancher/app:v2 is %s, want %s", got, want)
	}
	bareDigest := digestOf(t, bare)
	if !strings.Contains(stderr, bareDigest) || !strings.Contains(stderr, `only by the tag "v1"`) || !strings.Contains(stderr, "--repository") {
		t.Fatalf("no warning naming %s and --repository:\n%s", bareDigest, stderr)
	}

	code, _, stderr = ferry(t, "push", dir, "--registry", dst, "--insecure-registry", dst, "--repository", "airgap/bare", "-q")
	if code != 0 || strings.Contains(stderr, "warning") {
		t.Fatalf("push --repository: exit %d: %s", code, stderr)
	}
	if got := headDigest(t, dst, dst+"/airgap/bare:v1"); got != bareDigest {
		t.Fatalf("airgap/bare:v1 is %s, want %s", got, bareDigest)
	}
}

func randomImg(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
