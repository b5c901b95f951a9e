package main

import (
	"fmt"
	"io"
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

func (o *bundleOptions) run(cmd *cobra.Command, args []string) error {
	refs, err := o.refs(args)
	if err != nil {
		return err
	}
	files, err := o.plan(cmd)
	if err != nil {
		return err
	}
	progress := cmd.ErrOrStderr()
	if o.quiet {
		progress = io.Discard
	}
	client, err := o.client(progress)
	if err != nil {
		return err
	}
	cache, err := registry.NewCache(o.cacheDir)
	if err != nil {
		return err
	}
	bar := newByteProgress(progress, "fetching layers")
	written := func(path string, images int) {
		bar.note(fmt.Sprintf("wrote %s (%d images, %s)", path, images, fileSize(path)))
		fmt.Fprintln(cmd.OutOrStdout(), path)
	}
	opts := []registry.PullOption{
		registry.WithCache(cache), registry.WithLevel(o.level), registry.WithSkipForeign(o.skipForeign),
		registry.WithProgress(bar), registry.WithBundleWritten(written),
	}
	if o.compression != "" {
		comp, err := bundle.ParseCompression(o.compression)
		if err != nil {
			return err
		}
		opts = append(opts, registry.WithCompression(comp))
	}
	fmt.Fprintf(progress, "resolving %d images for %d target(s)\n", len(refs), len(files))
	bar.start()
	fetched, err := client.WriteBundles(cmd.Context(), refs, files, opts...)
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
// targets would share with a hint at {version}; WriteBundles checks the
// rest before anything is fetched.
func (o *bundleOptions) plan(cmd *cobra.Command) ([]registry.BundleFile, error) {
	targets, err := o.targets(cmd)
	if err != nil {
		return nil, err
	}
	var files []registry.BundleFile
	seen := map[string]bool{}
	for _, t := range targets {
		path := o.output
		for k, v := range t.Placeholders() {
			path = strings.ReplaceAll(path, k, v)
		}
		if seen[path] {
			return nil, fmt.Errorf("output %q is the same for several targets: put {version} in it, e.g. 'dist/images-{version}.tar.zst'", o.output)
		}
		seen[path] = true
		files = append(files, registry.BundleFile{Path: path, Target: t})
	}
	return files, nil
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
