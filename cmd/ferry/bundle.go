package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
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
	fs.StringVar(&o.windowsVersions, "windows-version", "", "Windows releases, comma-separated: "+strings.Join(platform.KnownWindowsVersions(), ", ")+" (implies windows/amd64)")
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
	target platform.Target
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
	targets := make([]platform.Target, len(jobs))
	for i, j := range jobs {
		targets[i] = j.target
	}
	bar := newByteProgress(progress, "fetching layers")
	fmt.Fprintf(progress, "resolving %d images for %d target(s)\n", len(refs), len(targets))
	bar.start()
	write := func(ctx context.Context, i int, images []bundle.Image, blobs bundle.Blobs) error {
		path := jobs[i].path
		err := bundle.WriteFileAtomic(ctx, path, func(ctx context.Context, w io.Writer) error {
			return bundle.Write(ctx, w, images, blobs, bundle.WithCompression(comp, o.level),
				bundle.WithSkipForeignLayers(o.skipForeign), bundle.WithBlobsVerified(true))
		})
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		bar.note(fmt.Sprintf("wrote %s (%d images, %s)", path, len(images), fileSize(path)))
		fmt.Fprintln(cmd.OutOrStdout(), path)
		return nil
	}
	fetched, err := o.client(progress).Pull(cmd.Context(), refs, targets, cache, write,
		registry.WithSkipForeign(o.skipForeign), registry.WithProgress(bar))
	bar.finish()
	if err == nil {
		fmt.Fprintf(progress, "fetched %s from registries\n", humanBytes(fetched))
	}
	return err
}

func (o *bundleOptions) refs(args []string) ([]string, error) {
	refs := append([]string(nil), args...)
	for _, f := range o.files {
		list, err := readImageList(f)
		if err != nil {
			return nil, err
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
		// Fail before any download, and create dist/ as release scripts expect.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, "", fmt.Errorf("output directory for %s: %w", path, err)
		}
		jobs = append(jobs, bundleJob{target: t, path: path})
	}
	comp, err := o.compressionFor(jobs[0].path)
	return jobs, comp, err
}

func (o *bundleOptions) targets(cmd *cobra.Command) ([]platform.Target, error) {
	platforms := o.platform
	if o.windowsVersions != "" && !cmd.Flags().Changed("platform") {
		platforms = ""
	}
	targets, err := platform.ParseTargets(platforms, o.windowsVersions)
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
