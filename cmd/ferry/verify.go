package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/registry/platform"
)

// verifyGCPercent is GOGC while verify runs, unless the environment sets it.
const verifyGCPercent = 20

type verifyOptions struct {
	images         string
	exact          bool
	platform       string
	windowsVersion string
	strict         bool
	allowExtra     bool
	format         formatFlag
	quiet          bool
	maxExpansion   int64
	spillDir       string
	maxSpill       int64
	digestsOnly    bool
}

func newVerifyCmd() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check a bundle or any image tarball: structure, digests, diff_ids, expectations",
		Long: `verify reads an archive once, start to end, and checks that it is a well-formed
tar, that every blob matches its digest and size, that each layer decompresses
to the diff_id its config lists, that index.json, manifest.json and
repositories agree, and that left-out foreign layers carry URLs. It reads ferry
bundles, OCI layouts, docker save (old and new) and crane tarballs, plain or
compressed with zstd or gzip.

Two modes:
  full (the default)  everything above. It decompresses every gzip or zstd
                      layer to hash it for its diff_id, which is what a loader
                      does when it unpacks the layer: several times the CPU
                      of the digest pass, spread over --jobs cores.
  --digests-only      the same checks except the diff_ids of compressed
                      layers (like 'crane validate --fast'): the tar, every
                      blob's digest and size, the metadata's agreement, -f,
                      --platform and --windows-version (which need only the
                      configs). Layers are hashed as stored, not decompressed,
                      so it costs one hash of the archive's bytes.

Exit status: 0 verified, 1 problems found, 2 usage or I/O error.`,
		Example: `  ferry verify dist/rke2-windows-1809-amd64-images.tar.zst -f windows-images.txt --windows-version 1809
  ferry verify bundle.tar.zst --format json > report.json
  ferry verify --digests-only bundle.tar.zst
  curl -s https://example.com/images.tar.zst | ferry verify -`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.images, "file", "f", "", "image list that must all be in the archive (one reference per line, # comments; '-' for stdin)")
	fs.StringVar(&o.images, "images", "", "image list (deprecated: use -f/--file)")
	_ = fs.MarkDeprecated("images", "use -f/--file, the image list flag of every ferry command")
	fs.BoolVar(&o.exact, "exact", false, "with -f, also fail on images not in the list")
	fs.StringVar(&o.platform, "platform", "", "os/arch[/variant][:os.version] every image's config must have")
	fs.StringVar(&o.windowsVersion, "windows-version", "", "Windows release every image must be for, matched by build: "+strings.Join(platform.KnownWindowsVersions(), ", "))
	fs.BoolVar(&o.strict, "strict", false, "fail, rather than warn, when metadata is not at the front")
	fs.BoolVar(&o.allowExtra, "allow-extra", false, "accept entries nothing refers to")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	fs.BoolVar(&o.digestsOnly, "digests-only", false, "check blobs' digests and sizes and the metadata, but do not decompress layers for their diff_ids (like crane validate --fast)")
	fs.Int64Var(&o.maxExpansion, "max-expansion", 100, "stop decompressing a layer past max(256 MiB, this × its compressed size)")
	fs.StringVar(&o.spillDir, "spill-dir", "", "where layers waiting to be decompressed are kept (default: the system temp dir)")
	fs.Int64Var(&o.maxSpill, "max-spill", verify.DefaultMaxSpill, "bytes of layers that may wait in --spill-dir at once; 0 decompresses one large layer at a time")
	addFormatFlag(cmd, &o.format, true)
	_ = cmd.RegisterFlagCompletionFunc("windows-version", fixedCompletion(windowsNames()...))
	return cmd
}

func (o *verifyOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	if o.images == "-" && args[0] == "-" {
		return fmt.Errorf("the archive and the image list cannot both be stdin")
	}
	opts, err := o.verifyOptions(cmd)
	if err != nil {
		return err
	}
	in, size, closeIn, err := openInput(cmd, args[0])
	if err != nil {
		return err
	}
	defer closeIn()
	// verify's live heap is its bounded buffers and decoders, and what it
	// allocates per layer is small: at the default GOGC the heap would grow
	// towards twice its live size only as fast as layers pass, so the RSS
	// would creep up with the archive's size. A low GOGC holds it near the
	// live size from the first layers on, for a few cheap collections.
	defer setGCPercent(verifyGCPercent)()
	prog := o.progress(cmd, size)
	prog.start()
	rep, err := verify.Archive(cmd.Context(), prog.reader(in), opts...)
	prog.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if o.format.json() {
		err = writeVerifyJSON(cmd.OutOrStdout(), args[0], rep)
	} else {
		printVerifyReport(cmd.OutOrStdout(), args[0], rep)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d problem(s) found", args[0], rep.Count(verify.SeverityError))}
	}
	return nil
}

func (o *verifyOptions) verifyOptions(cmd *cobra.Command) ([]verify.Option, error) {
	n, err := jobs(cmd, cpuJobs())
	if err != nil {
		return nil, err
	}
	mode := verify.ModeFull
	if o.digestsOnly {
		mode = verify.ModeDigests
	}
	opts := []verify.Option{verify.WithMode(mode), verify.WithStrict(o.strict), verify.WithAllowExtra(o.allowExtra), verify.WithJobs(n), verify.WithMaxExpansion(o.maxExpansion),
		verify.WithSpill(o.spillDir, o.maxSpill)}
	if o.exact && o.images == "" {
		return nil, fmt.Errorf("--exact needs -f FILE")
	}
	if o.images != "" {
		refs, err := readImageList(cmd, o.images)
		if err != nil {
			return nil, err
		}
		opts = append(opts, verify.WithExpectedImages(refs, o.exact))
	}
	t, ok, err := o.target()
	if err != nil || !ok {
		return opts, err
	}
	return append(opts, verify.WithPlatform(t)), nil
}

// target parses --platform and --windows-version the way `ferry bundle`
// does, so a bundle verifies against the flags that built it.
func (o *verifyOptions) target() (platform.Target, bool, error) {
	targets, err := platform.ParseTargets(o.platform, o.windowsVersion)
	switch {
	case err != nil:
		return platform.Target{}, false, err
	case len(targets) > 1:
		return platform.Target{}, false, fmt.Errorf("a bundle is for one platform or Windows version; give one, not %d", len(targets))
	case len(targets) == 0:
		return platform.Target{}, false, nil
	}
	return targets[0], true, nil
}

// verifyJSON is `ferry verify --format json`: the check report both verify
// commands share, with what verify learnt of the archive.
type verifyJSON struct {
	checkReport
	File          string               `json:"file"`
	Mode          string               `json:"mode"`
	Compression   string               `json:"compression"`
	Format        string               `json:"format"`
	MetadataFirst bool                 `json:"metadataFirst"`
	Entries       int                  `json:"entries"`
	Bytes         int64                `json:"decompressedBytes"`
	Images        []verify.ImageResult `json:"images"`
}

func writeVerifyJSON(w io.Writer, file string, rep *verify.Report) error {
	return writeJSON(w, verifyJSON{
		checkReport: checkReport{SchemaVersion: schemaVersion, Subject: file, OK: rep.OK(),
			Errors: rep.Count(verify.SeverityError), Warnings: rep.Count(verify.SeverityWarning), Checks: archiveChecks(rep.Checks)},
		File: file, Mode: string(rep.Mode), Compression: string(rep.Compression), Format: rep.Format, MetadataFirst: rep.MetadataFirst,
		Entries: rep.Entries, Bytes: rep.Bytes, Images: rep.Images,
	})
}

// printVerifyReport prints one line per image, then the problems, then the verdict.
func printVerifyReport(w io.Writer, file string, rep *verify.Report) {
	order := "metadata first"
	if !rep.MetadataFirst {
		order = "metadata not first"
	}
	fmt.Fprintf(w, "%s: %s, %s, %s, %d entries, %s decompressed\n", file, rep.Compression, rep.Format, order, rep.Entries, humanBytes(rep.Bytes))
	fmt.Fprintf(w, "mode: %s\n", modeText(rep.Mode))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, img := range rep.Images {
		verdict := "ok"
		if !img.OK {
			verdict = "FAIL"
		}
		layers := fmt.Sprintf("%d layer(s)", img.Layers)
		if img.Missing > 0 {
			layers += fmt.Sprintf(" (%d foreign, not stored)", img.Missing)
		}
		names := "<none>"
		if len(img.Names) > 0 {
			names = verify.EscapeControls(strings.Join(img.Names, ","))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", verdict, names, platformString(img.Platform), layers)
	}
	tw.Flush()
	if problems := rep.Problems(); len(problems) > 0 {
		fmt.Fprintln(w, "problems:")
		for _, c := range problems {
			fmt.Fprintf(w, "  %-7s %s\n", c.Severity, c)
		}
	}
	passed := 0
	for _, c := range rep.Checks {
		if c.OK {
			passed++
		}
	}
	errs, warns := rep.Count(verify.SeverityError), rep.Count(verify.SeverityWarning)
	if errs == 0 {
		fmt.Fprintf(w, "verified: %d images, %d checks passed, %d warning(s)\n", len(rep.Images), passed, warns)
		return
	}
	fmt.Fprintf(w, "FAILED: %d error(s), %d warning(s); %d checks passed\n", errs, warns, passed)
}

// modeText says what the mode checked, so a digests-only pass is not read
// as a full one.
func modeText(m verify.Mode) string {
	if m == verify.ModeDigests {
		return "digests only (blob digests and sizes, metadata; layers not decompressed, diff_ids of compressed layers not checked)"
	}
	return "full (blob digests and sizes, metadata, and every layer decompressed for its diff_id)"
}
