package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry"
)

type bundleOptions struct {
	registryFlags
	files           []string
	platform        string
	windowsVersions string
	output          string
	compression     string
	level           int
	cacheDir        string
	skipForeign     bool
	quiet           bool
}

func newBundleCmd() *cobra.Command {
	o := &bundleOptions{}
	cmd := &cobra.Command{
		Use:   "bundle [IMAGE...] -o PATH",
		Short: "Pull images into a metadata-first bundle, one per platform or Windows version",
		Example: `  ferry bundle -f windows-images.txt --windows-version 1809,ltsc2022,2025 \
      -o 'dist/rke2-windows-{version}-amd64-images.tar.zst'
  ferry bundle -f images.txt --platform linux/arm64 -o dist/rke2-images.linux-arm64.tar.zst
  ferry bundle docker.io/rancher/mirrored-pause:3.6 -o pause.tar.gz`,
		RunE: o.run,
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.files, "file", "f", nil, "image list, one reference per line, # comments (repeatable)")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "os/arch[/variant], comma-separated for several bundles")
	fs.StringVar(&o.windowsVersions, "windows-version", "", "Windows releases, comma-separated: "+strings.Join(registry.KnownWindowsVersions(), ", ")+" (implies windows/amd64)")
	fs.StringVarP(&o.output, "output", "o", "", "output path; with several targets it must contain {version} (or {os}/{arch})")
	fs.StringVar(&o.compression, "compression", "", "zstd, gzip or none (default: from the output extension)")
	fs.IntVar(&o.level, "level", bundle.DefaultLevel, "compression level (0: codec default, zstd 3)")
	fs.StringVar(&o.cacheDir, "cache", registry.DefaultCacheDir(), "content-addressed blob cache")
	fs.BoolVar(&o.skipForeign, "skip-foreign-layers", false, "leave non-distributable (Windows base) layers out, keeping their descriptors")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output")
	o.registryFlags.register(fs)
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// bundleJob is one output file and what goes into it.
type bundleJob struct {
	target registry.Target
	path   string
}

func (o *bundleOptions) run(cmd *cobra.Command, args []string) error {
	refs, err := o.refs(args)
	if err != nil {
		return err
	}
	jobs, comp, err := o.plan(cmd)
	if err != nil {
		return err
	}
	progress := cmd.ErrOrStderr()
	if o.quiet {
		progress = io.Discard
	}
	cache, err := registry.NewCache(o.cacheDir)
	if err != nil {
		return err
	}
	s := &bundleSession{opts: o, client: o.client(progress), progress: newByteProgress(progress, "fetching layers")}
	s.fetcher = s.client.NewFetcher(cache, s.progress)
	return s.run(cmd, refs, jobs, comp)
}

// bundleSession is one `ferry bundle` run: layers are fetched from the
// moment each image's manifest is known, and every bundle is written as
// its layers arrive.
type bundleSession struct {
	opts     *bundleOptions
	client   *registry.Client
	fetcher  *registry.Fetcher
	progress *byteProgress
	addErr   error
	addOnce  sync.Once
}

func (s *bundleSession) run(cmd *cobra.Command, refs []string, jobs []bundleJob, comp bundle.Compression) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	targets := make([]registry.Target, len(jobs))
	for i, j := range jobs {
		targets[i] = j.target
	}
	fmt.Fprintf(s.progress.out, "resolving %d images for %d target(s)\n", len(refs), len(targets))
	s.progress.start()
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- s.fetcher.Run(ctx) }()
	stop := func(err error) error {
		cancel()
		<-fetchErr
		s.progress.finish()
		return err
	}
	resolved, err := s.client.ResolveAll(ctx, refs, targets, registry.WhenManifestKnown(s.fetch))
	s.fetcher.Close()
	if err == nil {
		err = s.addErr
	}
	if err != nil {
		return stop(err)
	}
	for i, job := range jobs {
		if err := s.write(ctx, job, resolved[i], comp); err != nil {
			return stop(fmt.Errorf("writing %s: %w", job.path, err))
		}
		fmt.Fprintln(cmd.OutOrStdout(), job.path)
	}
	err = <-fetchErr
	s.progress.finish()
	if err == nil {
		fmt.Fprintf(s.progress.out, "fetched %s from registries\n", humanBytes(s.fetcher.Fetched()))
	}
	return err
}

// fetch queues an image's layers as soon as its manifest is known.
func (s *bundleSession) fetch(r *registry.Resolved) {
	if _, err := s.fetcher.Add([]*registry.Resolved{r}, s.opts.skipForeign); err != nil {
		s.addOnce.Do(func() { s.addErr = err })
	}
	s.progress.setTotal(s.fetcher.Queued())
}

func (s *bundleSession) write(ctx context.Context, job bundleJob, resolved []*registry.Resolved, comp bundle.Compression) error {
	images := make([]bundle.Image, len(resolved))
	for k, r := range resolved {
		images[k] = r.Image
	}
	err := bundle.WriteFileAtomic(ctx, job.path, func(ctx context.Context, w io.Writer) error {
		return bundle.Write(ctx, w, images, s.fetcher, bundle.WithCompression(comp, s.opts.level),
			bundle.WithSkipForeignLayers(s.opts.skipForeign), bundle.WithBlobsVerified(true))
	})
	if err == nil {
		s.progress.note(fmt.Sprintf("wrote %s (%d images, %s)", job.path, len(images), fileSize(job.path)))
	}
	return err
}

func (o *bundleOptions) refs(args []string) ([]string, error) {
	refs := append([]string(nil), args...)
	for _, f := range o.files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		list, err := registry.ReadImageList(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("image list %s: %w", f, err)
		}
		refs = append(refs, list...)
	}
	refs = registry.Dedupe(refs)
	if len(refs) == 0 {
		return nil, fmt.Errorf("no images: give references as arguments or with -f FILE")
	}
	return refs, nil
}

// plan turns the target flags into output paths, refusing paths that two
// targets would share, before anything is fetched.
func (o *bundleOptions) plan(cmd *cobra.Command) ([]bundleJob, bundle.Compression, error) {
	targets, err := o.targets(cmd)
	if err != nil {
		return nil, "", err
	}
	var jobs []bundleJob
	seen := map[string]bool{}
	for _, t := range targets {
		path := o.output
		for k, v := range t.Placeholders() {
			path = strings.ReplaceAll(path, k, v)
		}
		if seen[path] {
			return nil, "", fmt.Errorf("output %q is the same for several targets: put {version} in it, e.g. 'dist/images-{version}.tar.zst'", o.output)
		}
		seen[path] = true
		jobs = append(jobs, bundleJob{target: t, path: path})
	}
	comp, err := o.compressionFor(jobs[0].path)
	return jobs, comp, err
}

func (o *bundleOptions) targets(cmd *cobra.Command) ([]registry.Target, error) {
	platforms := o.platform
	if o.windowsVersions != "" && !cmd.Flags().Changed("platform") {
		platforms = ""
	}
	targets, err := registry.ParseTargets(platforms, o.windowsVersions)
	if err == nil && len(targets) == 0 {
		err = fmt.Errorf("--platform is empty: give os/arch, e.g. linux/amd64")
	}
	return targets, err
}

func (o *bundleOptions) compressionFor(path string) (bundle.Compression, error) {
	if o.compression != "" {
		return bundle.ParseCompression(o.compression)
	}
	return bundle.CompressionFromPath(path)
}
