package serve_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/registry/serve"
)

// ExampleNew serves the per-version Windows bundles of a release as one
// registry, as an install tool embedding a registry mirror would.
func ExampleNew() {
	ctx := context.Background()
	var archives []*bundle.Archive
	for _, p := range []string{"rke2-windows-1809-amd64-images.tar.zst", "rke2-windows-ltsc2022-amd64-images.tar.zst"} {
		a, err := bundle.OpenPath(ctx, p)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer a.Close()
		archives = append(archives, a)
	}
	cat, err := catalog.New(archives)
	if err != nil {
		log.Fatal(err)
	}
	h, err := serve.New(cat)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:5000", h))
}
