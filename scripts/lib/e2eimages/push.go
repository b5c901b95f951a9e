package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// pushMany pushes count small distinct linux/amd64 images, REPO-NNNNN:v1,
// jobs at a time, and prints their references in order. Every image has a
// base layer all of them share and a small layer of its own, as a large
// airgap set shares base images: bundling them means many small manifests,
// configs and layers. Credentials come from docker's config.json, CAs from
// SSL_CERT_FILE, as for ferry and crane.
func pushMany(repo, countArg, jobsArg string, out io.Writer) error {
	count, err := strconv.Atoi(countArg)
	if err != nil || count < 1 {
		return fmt.Errorf("count %q: want a positive number", countArg)
	}
	jobs, err := strconv.Atoi(jobsArg)
	if err != nil || jobs < 1 {
		return fmt.Errorf("jobs %q: want a positive number", jobsArg)
	}
	base, err := random.Layer(16<<10, types.DockerLayer)
	if err != nil {
		return err
	}
	refs := make([]string, count)
	for i := range refs {
		refs[i] = fmt.Sprintf("%s-%05d:v1", repo, i)
	}
	// One transport for every push, so connections are reused.
	puller, err := remote.NewPusher(remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithJobs(2))
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(jobs)
	for i, ref := range refs {
		g.Go(func() error { return pushOne(ctx, puller, ref, i, base) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range refs {
		fmt.Fprintln(out, r)
	}
	return nil
}

func pushOne(ctx context.Context, p *remote.Pusher, ref string, i int, base v1.Layer) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	own, err := random.Layer(1<<10, types.DockerLayer)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, base, own)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"n": strconv.Itoa(i)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.Reuse(p)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
