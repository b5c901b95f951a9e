package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/registry"
)

type pushOptions struct {
	target     string
	maps       []string
	repository string
	onExisting string
	dryRun     bool
	format     formatFlag
	quiet      bool
}

func newPushCmd() *cobra.Command {
	o := &pushOptions{}
	cmd := &cobra.Command{
		Use:   "push BUNDLE|ARCHIVE... --registry HOST[:PORT][/PREFIX]",
		Short: "Load bundles or image archives into a private registry, digests kept",
		Long: `Push copies every image of ferry bundles and image archives (docker save,
crane, skopeo, podman, OCI layout archives or directories; plain, gzip or zstd;
"-" reads stdin) into a registry. The source registry host is replaced by
--registry and the repository path kept (docker.io/rancher/x:1 ->
HOST/PREFIX/rancher/x:1), so rke2's system-default-registry and
registries.yaml mirrors find them.

Manifests, lists and configs are pushed byte for byte: every digest in the
registry is the bundle's. Per-version Windows bundles of one tag, pushed
together or one after another, leave one list holding every platform pushed,
with the upstream list's own bytes once all its children are there.
Blobs the registry has are skipped, blobs pushed to another repository are
mounted, and a rerun after an interruption sends only what is missing.`,
		Example: `  ferry push dist/rke2-windows-*-amd64-images.tar.zst dist/rke2-images.linux-amd64.tar.zst \
      --registry registry.example:5000
  ferry push images.tar --registry registry.example/mirror --map rancher=rancher-mirror
  ferry push bundle.tar.zst --registry registry.example --dry-run --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: o.run,
	}
	fs := cmd.Flags()
	fs.StringVar(&o.target, "registry", "", "destination HOST[:PORT][/PREFIX] (required)")
	fs.StringArrayVar(&o.maps, "map", nil, "rewrite a repository prefix, FROM=TO (repeatable; the first match applies, before the PREFIX)")
	fs.StringVar(&o.repository, "repository", "", "repository for images an OCI archive names only by a tag (ref.name \"v1\") or not at all (those go by digest)")
	fs.StringVar(&o.onExisting, "on-existing-tag", string(registry.OnExistingTagMerge), "a tag the registry holds with other content: merge, overwrite, skip or error")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read the registry and report what would be pushed, without pushing")
	addFormatFlag(cmd, &o.format, true)
	_ = cmd.RegisterFlagCompletionFunc("on-existing-tag", fixedCompletion("merge", "overwrite", "skip", "error"))
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress")
	_ = cmd.MarkFlagRequired("registry")
	return cmd
}

func (o *pushOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	mode, err := registry.ParseOnExistingTag(o.onExisting)
	if err != nil {
		return err
	}
	catOpts, err := mapOptions(o.maps)
	if err != nil {
		return err
	}
	if o.repository != "" {
		catOpts = append(catOpts, catalog.WithRepository(o.repository))
	}
	ctx := cmd.Context()
	archives, cleanup, err := openArchives(ctx, args, cmd.InOrStdin())
	defer cleanup()
	if err != nil {
		return err
	}
	cat, err := catalog.New(archives, catOpts...)
	if err != nil {
		return err
	}
	warnUnnamed(cmd.ErrOrStderr(), cat.Unnamed(), args)
	progressOut := cmd.ErrOrStderr()
	if o.quiet || o.dryRun {
		progressOut = io.Discard
	}
	prog := newByteProgress(progressOut, "pushing")
	warn := prog.warnings()
	if progressOut == io.Discard {
		warn = cmd.ErrOrStderr()
	}
	client, err := registryClient(cmd, warn)
	if err != nil {
		return err
	}
	prog.start()
	rep, err := client.Push(ctx, cat, o.target, registry.WithOnExistingTag(mode),
		registry.WithPushDryRun(o.dryRun), registry.WithPushProgress(prog))
	prog.finish()
	if err != nil {
		return err
	}
	if o.format.json() {
		return writeJSON(cmd.OutOrStdout(), struct {
			SchemaVersion int `json:"schemaVersion"`
			*registry.PushReport
		}{schemaVersion, rep})
	}
	printPushReport(cmd.OutOrStdout(), rep)
	return nil
}

func mapOptions(maps []string) ([]catalog.Option, error) {
	var out []catalog.Option
	for _, m := range maps {
		from, to, ok := strings.Cut(m, "=")
		if !ok {
			return nil, fmt.Errorf("--map %q: use FROM=TO", m)
		}
		out = append(out, catalog.WithMap(from, to))
	}
	return out, nil
}

// openArchives opens every path; "-" is stdin, spilled to a temporary file
// since reading an archive needs random access.
func openArchives(ctx context.Context, paths []string, stdin io.Reader) ([]*bundle.Archive, func(), error) {
	var archives []*bundle.Archive
	var temps []string
	cleanup := func() {
		for _, a := range archives {
			a.Close()
		}
		for _, t := range temps {
			os.Remove(t)
		}
	}
	for _, p := range paths {
		if p == "-" {
			spilled, err := spill(stdin)
			if spilled != "" {
				temps = append(temps, spilled)
			}
			if err != nil {
				return nil, cleanup, fmt.Errorf("reading stdin: %w", err)
			}
			p = spilled
		}
		a, err := bundle.OpenPath(ctx, p)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s: %w", p, err)
		}
		archives = append(archives, a)
	}
	return archives, cleanup, nil
}

func spill(r io.Reader) (string, error) {
	f, err := os.CreateTemp("", "ferry-push-*.tar")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return f.Name(), err
	}
	return f.Name(), f.Close()
}

func printPushReport(w io.Writer, rep *registry.PushReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tACTION\tDIGEST\tUPLOADED\tMOUNTED\tEXISTING")
	for _, img := range rep.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%s)\t%d\t%d\n", img.Reference, img.Action, img.Digest,
			img.Uploaded, humanBytes(img.BytesUploaded), img.Mounted, img.Existing)
	}
	tw.Flush()
	verb := "uploaded"
	if rep.DryRun {
		verb = "would upload"
	}
	fmt.Fprintf(w, "%s %d blobs (%s), mounted %d, %d already there\n", verb,
		rep.BlobsUploaded, humanBytes(rep.BytesUploaded), rep.BlobsMounted, rep.BlobsExisting)
}

// warnUnnamed names the images left out for want of a repository, and how
// to push them.
func warnUnnamed(w io.Writer, unnamed []catalog.Unnamed, paths []string) {
	for _, u := range unnamed {
		what := "has no name"
		if u.Tag != "" {
			what = fmt.Sprintf("is named only by the tag %q (org.opencontainers.image.ref.name)", u.Tag)
		}
		fmt.Fprintf(w, "warning: %s: image %s %s, so it has no repository and is not pushed; "+
			"give one with --repository REPO (--map cannot, it renames repositories)\n", paths[u.Archive], u.Digest, what)
	}
}
