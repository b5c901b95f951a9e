package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
)

type bundleOptions struct {
	files           []string
	platform        string
	windowsVersions string
	output          string
	compression     string
	level           int
	cacheDir        string
	skipForeign     bool
	quiet           bool
	format          formatFlag
	sidecars        bool
	checksums       string
	// byPath is the target each output path was made for.
	byPath map[string]platform.Target
}

func newBundleCmd() *cobra.Command {
	o := &bundleOptions{}
	cmd := &cobra.Command{
		Use:   "bundle [IMAGE...] -o PATH",
		Short: "Pull images into a metadata-first bundle, one per platform or Windows version",
		Long: `bundle resolves every image for each target (--platform, or one windows/amd64
target per --windows-version) and writes one bundle per target. Everything
that could fail after the download is checked first: placeholders, the
compression and level, that each output directory is writable, and that no
two targets are one build.

-o may hold {version} (the Windows release as given, else os-arch[-variant]),
{os} and {arch}; '-o -' writes a single bundle to stdout (zstd unless
--compression says otherwise).`,
		Example: `  ferry bundle -f windows-images.txt --windows-version 1809,ltsc2022,2025 \
      -o 'dist/rke2-windows-{version}-amd64-images.tar.zst' --sidecars
  ferry bundle -f images.txt --platform linux/arm64 -o dist/rke2-images.linux-arm64.tar.zst
  ferry bundle docker.io/rancher/mirrored-pause:3.6 -o pause.tar.gz --format json
  ferry bundle docker.io/rancher/mirrored-pause:3.6 -o - | ssh node 'ferry push - --registry r.local'`,
		RunE: o.run,
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.files, "file", "f", nil, "image list, one reference per line, # comments ('-' for stdin; repeatable)")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "os/arch[/variant], comma-separated for several bundles")
	fs.StringVar(&o.windowsVersions, "windows-version", "", "Windows releases, comma-separated: "+strings.Join(platform.KnownWindowsVersions(), ", ")+" (implies windows/amd64; a build, not a revision)")
	fs.StringVarP(&o.output, "output", "o", "", "output path, with {version}, {os}, {arch} for several targets; '-' for stdout (one target)")
	fs.StringVar(&o.compression, "compression", "", "zstd, gzip or none (default: from the output extension; zstd for stdout)")
	fs.IntVar(&o.level, "level", bundle.DefaultLevel, "compression level for all content: zstd 1-22, gzip 1-9; 0: the codec's default (zstd: by content, level 1 for data that does not compress, the strongest level in long-window frames for data that does)")
	fs.StringVar(&o.cacheDir, "cache", registry.DefaultCacheDir(), "content-addressed blob cache")
	fs.BoolVar(&o.skipForeign, "skip-foreign-layers", false, "leave non-distributable (Windows base) layers out, keeping their descriptors")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output (warnings still go to stderr)")
	fs.BoolVar(&o.sidecars, "sidecars", false, "also write BUNDLE.txt (its images, one per line) and add 'SHA256  NAME' lines for both to --checksums")
	fs.StringVar(&o.checksums, "checksums", "", "with --sidecars, the sha256sum file to update (default: sha256sum-{arch}.txt beside each bundle)")
	addFormatFlag(cmd, &o.format, false)
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.RegisterFlagCompletionFunc("windows-version", fixedCompletion(windowsNames()...))
	_ = cmd.RegisterFlagCompletionFunc("compression", fixedCompletion("zstd", "gzip", "none"))
	return cmd
}

// windowsNames are the release names --windows-version completes.
func windowsNames() []string {
	var out []string
	for _, k := range platform.KnownWindowsVersions() {
		if k != "10.0.N" {
			out = append(out, strings.Split(k, "|")...)
		}
	}
	return out
}

func (o *bundleOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	defer setGCPercent(bundleGCPercent)()
	refs, err := o.refs(cmd, args)
	if err != nil {
		return err
	}
	files, err := o.plan(cmd)
	if err != nil {
		return err
	}
	opts := []registry.PullOption{registry.WithLevel(o.level), registry.WithSkipForeign(o.skipForeign)}
	if comp := o.compressionFor(); comp != "" {
		opts = append(opts, registry.WithCompression(bundle.Compression(comp)))
	}
	if err := registry.CheckBundleFiles(files, opts...); err != nil {
		return err
	}
	progress := cmd.ErrOrStderr()
	if o.quiet {
		progress = io.Discard
	}
	bar := newByteProgress(progress, "fetching layers")
	// -q silences progress, not warnings or -v's request log.
	warn := bar.warnings()
	if o.quiet {
		warn = cmd.ErrOrStderr()
	}
	client, err := registryClient(cmd, warn)
	if err != nil {
		return err
	}
	cache, err := registry.NewCache(o.cacheDir)
	if err != nil {
		return err
	}
	rep := bundleReport{SchemaVersion: schemaVersion, Bundles: []bundleJSON{}}
	var sideErr error
	opts = append(opts, registry.WithCache(cache),
		registry.WithProgress(bar), registry.WithBundleResult(func(r registry.BundleResult) {
			rep.Bundles = append(rep.Bundles, bundleEntry(r))
			if err := o.writeSidecars(cmd, r); err != nil && sideErr == nil {
				sideErr = err
			}
			bar.note(fmt.Sprintf("wrote %s (%d images, %s)", r.Path, len(r.Images), humanBytes(r.Size)))
			if !o.format.json() && o.output != "-" {
				fmt.Fprintln(cmd.OutOrStdout(), r.Path)
			}
		}))
	fmt.Fprintf(progress, "resolving %d images for %d target(s)\n", len(refs), len(files))
	bar.start()
	rep.Fetched, err = client.WriteBundles(cmd.Context(), refs, files, opts...)
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "fetched %s from registries\n", humanBytes(rep.Fetched))
	if sideErr != nil {
		return sideErr
	}
	if o.format.json() {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return nil
}

// compressionFor is --compression, parsed, or zstd for stdout.
func (o *bundleOptions) compressionFor() string {
	if o.compression == "" && o.output == "-" {
		return string(bundle.Zstd)
	}
	return o.compression
}

func (o *bundleOptions) refs(cmd *cobra.Command, args []string) ([]string, error) {
	refs := append([]string(nil), args...)
	for _, f := range o.files {
		list, err := readImageList(cmd, f)
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

// plan turns the target flags into output paths, after the checks only
// the command line can make (placeholders, stdout, sidecar paths);
// WriteBundles checks the rest before anything is fetched.
func (o *bundleOptions) plan(cmd *cobra.Command) ([]registry.BundleFile, error) {
	if err := o.preflight(); err != nil {
		return nil, err
	}
	targets, err := o.targets(cmd)
	if err != nil {
		return nil, err
	}
	if o.output == "-" {
		if len(targets) > 1 {
			return nil, fmt.Errorf("-o - writes one bundle to stdout, and %d targets were given: use a path with {version}", len(targets))
		}
		return []registry.BundleFile{{Path: "-", Target: targets[0], Writer: cmd.OutOrStdout()}}, nil
	}
	var files []registry.BundleFile
	o.byPath = map[string]platform.Target{}
	for _, t := range targets {
		path := fillPlaceholders(o.output, t)
		if _, seen := o.byPath[path]; seen {
			return nil, fmt.Errorf("output %q is the same for several targets: put {version} in it, e.g. 'dist/images-{version}.tar.zst'", o.output)
		}
		o.byPath[path] = t
		if err := o.checkChecksums(path, t); err != nil {
			return nil, err
		}
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
	switch {
	case err != nil && o.windowsVersions != "":
		return nil, fmt.Errorf("--windows-version %s: %w", o.windowsVersions, err)
	case err != nil:
		return nil, fmt.Errorf("--platform %s: %w", platforms, err)
	case len(targets) == 0:
		return nil, fmt.Errorf("--platform is empty: give os/arch, e.g. linux/amd64")
	}
	return targets, nil
}

// readImageList reads an image list file, or stdin for "-".
func readImageList(cmd *cobra.Command, path string) ([]string, error) {
	r := cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		defer f.Close()
		r = f
	}
	refs, err := registry.ReadImageList(r)
	if err != nil {
		return nil, fmt.Errorf("image list %s: %w", path, err)
	}
	return refs, nil
}

// bundleGCPercent is GOGC while bundle runs, unless the environment sets
// it. A bundle keeps every image's manifest, config and descriptors until
// it is written, so the live heap grows with the image list, and at the
// default target a run of thousands of images would hold as much garbage
// again.
const bundleGCPercent = 50

// setGCPercent sets the collector's target for one command, unless GOGC
// says otherwise, and returns the undo, so that commands run in one process
// (tests, an embedding tool) keep theirs.
func setGCPercent(percent int) (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	return func() { debug.SetGCPercent(old) }
}
