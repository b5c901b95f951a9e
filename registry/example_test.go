package registry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
)

// Write a bundle file from image references, as `ferry bundle` does: here
// against an in-process registry holding two random linux/amd64 images.
func ExampleClient_WriteBundle() {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	refs := []string{host + "/app:v1", host + "/sidecar:v2"}
	for _, ref := range refs {
		if err := pushRandom(ref); err != nil {
			log.Fatal(err)
		}
	}

	client, err := registry.NewClient(registry.WithInsecureRegistries(host))
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ferry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cache, err := registry.NewCache(filepath.Join(dir, "cache"))
	if err != nil {
		log.Fatal(err)
	}
	target, err := platform.ParseTarget("linux/amd64")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "dist", "images.tar.zst")
	if err := client.WriteBundle(context.Background(), path, refs, target, registry.WithCache(cache)); err != nil {
		log.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	contents, err := bundle.ReadContents(context.Background(), f)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range contents.Index.Manifests {
		fmt.Println(strings.TrimPrefix(d.Annotations[bundle.AnnotationContainerdName], host+"/"), d.Platform)
	}
	// Output:
	// app:v1 linux/amd64
	// sidecar:v2 linux/amd64
}

func pushRandom(ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return remote.Write(tag, img)
}
