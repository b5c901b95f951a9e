package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

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
	reg       registryFlags
	format    string
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

Prints the list's digest.`,
		Example: `  ferry manifest create reg.example/rancher/rke2-runtime:v1.31.2 \
      reg.example/rancher/rke2-runtime:v1.31.2-linux-amd64 \
      reg.example/rancher/rke2-runtime:v1.31.2-windows-1809 \
      reg.example/rancher/rke2-runtime:v1.31.2-windows-ltsc2022`,
		Args: cobra.MinimumNArgs(2),
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "", "list media type: docker or oci (default: that of the children)")
	f.StringSliceVar(&o.platforms, "platform", nil, "from SOURCE lists, take only these platforms, e.g. linux/amd64,windows/amd64:1809")
	f.BoolVar(&o.nondist, "allow-nondistributable", false, "also copy foreign (non-distributable) layers into the target repository")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the list that would be pushed, and push nothing")
	o.reg.register(f)
	return cmd
}

func (o *manifestCreateOptions) run(cmd *cobra.Command, args []string) error {
	format, err := registry.ParseIndexFormat(o.format)
	if err != nil {
		return err
	}
	targets, err := platform.ParseTargetList(strings.Join(o.platforms, ","))
	if err != nil {
		return err
	}
	client, err := o.reg.client(cmd.ErrOrStderr())
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
	reg    registryFlags
	raw    bool
	output string
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
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "table or json")
	o.reg.register(cmd.Flags())
	return cmd
}

func (o *manifestInspectOptions) run(cmd *cobra.Command, args []string) error {
	if err := manifestOutput(o.output, "table"); err != nil {
		return err
	}
	client, err := o.reg.client(cmd.ErrOrStderr())
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
	case o.output == "json":
		err = manifestJSON(out, list)
	default:
		err = writeListTable(out, list)
	}
	return err
}

type manifestVerifyOptions struct {
	reg         registryFlags
	require     []string
	requireFile string
	output      string
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
	f.StringVarP(&o.output, "output", "o", "text", "text or json")
	o.reg.register(f)
	return cmd
}

func (o *manifestVerifyOptions) run(cmd *cobra.Command, args []string) error {
	if err := manifestOutput(o.output, "text"); err != nil {
		return err
	}
	required, err := o.targets(cmd.InOrStdin())
	if err != nil {
		return err
	}
	client, err := o.reg.client(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	report, err := client.VerifyIndex(cmd.Context(), args[0], required)
	if err != nil {
		return err
	}
	if o.output == "json" {
		err = manifestJSON(cmd.OutOrStdout(), report)
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

func manifestOutput(got, human string) error {
	if got != human && got != "json" {
		return fmt.Errorf("invalid --output %q: use %s or json", got, human)
	}
	return nil
}

func manifestJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
