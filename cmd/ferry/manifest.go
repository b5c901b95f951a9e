package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
)

func newManifestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Create, inspect and verify multi-platform manifest lists",
		Long: `manifest publishes one tag for many platforms: a Docker manifest list or OCI
index whose entries are per-platform images (linux/amd64, linux/arm64, one
windows/amd64 per Windows release), and checks that a published list is
complete before anyone pulls it.`,
	}
	cmd.AddCommand(newManifestCreateCmd(), newManifestInspectCmd(), newManifestVerifyCmd())
	return cmd
}

type manifestCreateOptions struct {
	listType  string
	format    formatFlag
	platforms []string
	nondist   bool
	dryRun    bool
}

func newManifestCreateCmd() *cobra.Command {
	o := &manifestCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create TARGET SOURCE...",
		Short: "Push a manifest list of per-platform images",
		Long: `create pushes a manifest list to TARGET (a tag) with one entry per SOURCE image.
Each entry's platform (os, architecture, variant, os.version, os.features) is
read from the image's config. A SOURCE that is itself a list contributes its
children, filtered by --platform. Children are copied into TARGET's
repository first, by cross-repository mount where the registry allows.

The list is a Docker manifest list for Docker images and an OCI index for
OCI images; children of both kinds need an explicit --format. Two children
for one platform (Windows: one build) are refused. Foreign Windows base
layers stay where their URLs point unless --allow-nondistributable.

Prints the list's digest (--format json: the list, its entries and sources).`,
		Example: `  ferry manifest create reg.example/rancher/rke2-runtime:v1.31.2 \
      reg.example/rancher/rke2-runtime:v1.31.2-linux-amd64 \
      reg.example/rancher/rke2-runtime:v1.31.2-windows-1809 \
      reg.example/rancher/rke2-runtime:v1.31.2-windows-ltsc2022`,
		Args: cobra.MinimumNArgs(2),
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVar(&o.listType, "list-type", "", "list media type: docker or oci (default: that of the children)")
	_ = cmd.RegisterFlagCompletionFunc("list-type", fixedCompletion("docker", "oci"))
	addFormatFlag(cmd, &o.format, false)
	f.StringSliceVar(&o.platforms, "platform", nil, "from SOURCE lists, take only these platforms, e.g. linux/amd64,windows/amd64:1809")
	f.BoolVar(&o.nondist, "allow-nondistributable", false, "also copy foreign (non-distributable) layers into the target repository")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the list that would be pushed, and push nothing")
	return cmd
}

func (o *manifestCreateOptions) run(cmd *cobra.Command, args []string) error {
	if v := o.format.value; v == "docker" || v == "oci" {
		// --format was the list type before it was the report format.
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: --format %s is deprecated: use --list-type %s (--format is text or json in every ferry command)\n", v, v)
		o.listType, o.format.value = v, "text"
	}
	if err := o.format.check(); err != nil {
		return err
	}
	format, err := registry.ParseIndexFormat(o.listType)
	if err != nil {
		return err
	}
	targets, err := platform.ParseTargetList(strings.Join(o.platforms, ","))
	if err != nil {
		return err
	}
	client, err := registryClient(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	created, err := client.CreateIndex(cmd.Context(), args[0], args[1:],
		registry.WithIndexFormat(format),
		registry.WithIndexPlatforms(targets...),
		registry.WithIndexNondistributable(o.nondist),
		registry.WithIndexDryRun(o.dryRun))
	if err != nil {
		return err
	}
	if o.format.json() {
		return writeJSON(cmd.OutOrStdout(), struct {
			SchemaVersion int `json:"schemaVersion"`
			*registry.CreatedIndex
		}{schemaVersion, created})
	}
	stderr := cmd.ErrOrStderr()
	for i, d := range created.Manifests {
		fmt.Fprintf(stderr, "  %-32s %s  from %s\n", d.Platform.String(), d.Digest, created.Sources[i])
	}
	if o.dryRun {
		fmt.Fprintf(stderr, "dry run: %s would be %s (%s), nothing pushed\n", created.Reference, created.Digest, created.MediaType)
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", created.Raw)
		return err
	}
	fmt.Fprintf(stderr, "pushed %s (%s, %d entries)\n", created.Reference, created.MediaType, len(created.Manifests))
	_, err = fmt.Fprintln(cmd.OutOrStdout(), created.Digest)
	return err
}

type manifestInspectOptions struct {
	raw    bool
	format formatFlag
}

func newManifestInspectCmd() *cobra.Command {
	o := &manifestInspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show a manifest list's entries and digest",
		Long: `inspect prints each entry's platform (with os.version), digest, size and
media type, the list's own digest, and the digest line of a promotion file
("sha256:…": ["TAG"], as in a Kubernetes images.yaml dmap).`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	cmd.Flags().BoolVar(&o.raw, "raw", false, "print the list's exact bytes")
	addFormatFlag(cmd, &o.format, true)
	return cmd
}

func (o *manifestInspectOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	client, err := registryClient(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	list, err := client.InspectIndex(cmd.Context(), args[0])
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	switch {
	case o.raw:
		_, err = out.Write(list.Raw)
	case o.format.json():
		err = writeJSON(out, struct {
			SchemaVersion int `json:"schemaVersion"`
			*registry.ManifestList
		}{schemaVersion, list})
	default:
		err = writeListTable(out, list)
	}
	return err
}

type manifestVerifyOptions struct {
	require     []string
	requireFile string
	format      formatFlag
}

func newManifestVerifyCmd() *cobra.Command {
	o := &manifestVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Check a manifest list is complete and every entry is what it claims",
		Long: `verify passes only if every required platform is in the list exactly once
(Windows matched on build number), every child manifest can be fetched and
matches its entry's digest, size and media type, every child's config agrees
with the platform its entry claims (os, architecture, variant, os.version
build), every config and layer blob is in the repository, foreign layers
carry https URLs, and no entry is a duplicate or of an unknown platform.

Exit codes: 0 verified, 1 problems found, 2 usage or I/O error.`,
		Example: `  ferry manifest verify reg.example/rancher/rke2-runtime:v1.31.2 \
      --require linux/amd64,linux/arm64,windows/amd64:1809,windows/amd64:ltsc2022`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.require, "require", nil, "platforms that must be present, e.g. linux/amd64,windows/amd64:1809")
	f.StringVarP(&o.requireFile, "require-file", "f", "", "file of required platforms, one per line, # comments ('-' for stdin)")
	_ = f.MarkShorthandDeprecated("require-file", "use --require-file; -f is the image list flag of every ferry command")
	addFormatFlag(cmd, &o.format, true)
	return cmd
}

func (o *manifestVerifyOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	required, err := o.targets(cmd.InOrStdin())
	if err != nil {
		return err
	}
	client, err := registryClient(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	report, err := client.VerifyIndex(cmd.Context(), args[0], required)
	if err != nil {
		return err
	}
	if o.format.json() {
		err = writeIndexJSON(cmd.OutOrStdout(), report)
	} else {
		err = writeIndexReport(cmd.OutOrStdout(), report)
	}
	if err != nil {
		return err
	}
	if !report.OK {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d problems found", args[0], report.Problems)}
	}
	return nil
}

func (o *manifestVerifyOptions) targets(stdin io.Reader) ([]platform.Target, error) {
	required, err := platform.ParseTargetList(strings.Join(o.require, ","))
	if err != nil {
		return nil, err
	}
	if o.requireFile == "" {
		return required, nil
	}
	r := stdin
	if o.requireFile != "-" {
		f, err := os.Open(o.requireFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	more, err := platform.ReadTargetList(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.requireFile, err)
	}
	return append(required, more...), nil
}

// indexJSON is `ferry manifest verify --format json`: the check report both
// verify commands share, with the list verified.
type indexJSON struct {
	checkReport
	Reference string          `json:"reference"`
	Digest    string          `json:"digest"`
	MediaType string          `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
}

func writeIndexJSON(w io.Writer, r *registry.IndexReport) error {
	return writeJSON(w, indexJSON{
		checkReport: checkReport{SchemaVersion: schemaVersion, Subject: r.Reference, OK: r.OK, Errors: r.Problems, Checks: indexChecks(r.Checks)},
		Reference:   r.Reference, Digest: r.Digest.String(), MediaType: string(r.MediaType), Manifests: r.Manifests,
	})
}
