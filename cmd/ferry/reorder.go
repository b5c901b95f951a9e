package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder"
)

type reorderOptions struct {
	output      string
	compression string
	level       int
	format      formatFlag
	quiet       bool
}

func newReorderCmd() *cobra.Command {
	o := &reorderOptions{}
	cmd := &cobra.Command{
		Use:   "reorder ARCHIVE",
		Short: "Make any image tarball metadata-first",
		Long: `Reorder rewrites an image tarball (docker save, crane, skopeo, podman, OCI
archive) so that oci-layout, index.json, manifest.json, repositories and the
image configs and manifests come first, in a compressed frame of their own.
Loaders such as 'ferry list' then read a few kilobytes instead of the whole
file. Every entry keeps its header and bytes; layers keep their order.

Without -o the archive is replaced atomically and keeps its compression.
The input's compression is detected from its content, not its name.`,
		Example: `  ferry reorder in.tar.gz -o out.tar.zst     # convert and reorder
  ferry reorder bundle.tar.zst               # in place, atomically
  docker save busybox | ferry reorder - -o busybox.tar.zst`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write to this file instead of replacing ARCHIVE; its extension (.tar.zst, .tar.gz, .tar) picks the compression")
	f.StringVar(&o.compression, "compression", "", "zstd, gzip or none (default: from the -o extension, or the input's own when in place)")
	f.IntVar(&o.level, "level", bundle.DefaultLevel, "compression level for all content: zstd 1-22, gzip 1-9; 0: the codec's default (zstd: by content, level 1 for data that does not compress, the strongest level in long-window frames for data that does)")
	_ = cmd.RegisterFlagCompletionFunc("compression", fixedCompletion("zstd", "gzip", "none"))
	addFormatFlag(cmd, &o.format, false)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func (o *reorderOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	in, out := args[0], o.output
	if out == "" && in == "-" {
		return errors.New("reading from stdin needs -o FILE")
	}
	if out == "-" {
		return errors.New("-o -: reorder writes a file and renames it into place, so it cannot write to stdout; give -o FILE")
	}
	opts := []reorder.Option{reorder.WithRank(bundle.HeaderRank), reorder.WithStdin(cmd.InOrStdin())}
	if o.compression != "" {
		c, err := bundle.ParseCompression(o.compression)
		if err != nil {
			return err
		}
		opts = append(opts, reorder.WithCompression(string(c)))
	}
	prog := o.progress(cmd, in)
	opts = append(opts, reorder.WithProgress(prog))
	prog.start()
	res, err := reorder.File(cmd.Context(), in, out, bundle.ReorderCodec{Level: o.level, SpillDir: filepath.Dir(cmp.Or(out, in))}, opts...)
	prog.finish()
	if err != nil {
		return err
	}
	if out == "" {
		out = in
	}
	if o.format.json() {
		rep, err := newReorderReport(cmd, in, out, res)
		if err != nil {
			return err
		}
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	note := ""
	if res.WasOrdered {
		note = " (entries were already in this order)"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries, %d metadata (%s) first, %s%s\n",
		out, res.Entries, res.Metadata, humanBytes(res.MetadataBytes), res.Compression, note)
	return nil
}

// reorderReport is `ferry reorder --format json`: what reorder did, and the
// output as `bundle --format json` describes a bundle.
type reorderReport struct {
	SchemaVersion   int                `json:"schemaVersion"`
	Input           string             `json:"input"`
	Path            string             `json:"path"`
	Compression     string             `json:"compression"`
	Size            int64              `json:"size"`
	SHA256          string             `json:"sha256"`
	Entries         int                `json:"entries"`
	MetadataEntries int                `json:"metadataEntries"`
	MetadataBytes   int64              `json:"metadataBytes"`
	WasOrdered      bool               `json:"wasOrdered"`
	Strategy        string             `json:"strategy"`
	Images          []bundle.ImageInfo `json:"images"`
}

// newReorderReport reads the output back for its checksum and images.
func newReorderReport(cmd *cobra.Command, in, out string, res *reorder.Result) (*reorderReport, error) {
	rep := &reorderReport{SchemaVersion: schemaVersion, Input: in, Path: out, Compression: res.Compression,
		Entries: res.Entries, MetadataEntries: res.Metadata, MetadataBytes: res.MetadataBytes,
		WasOrdered: res.WasOrdered, Strategy: string(res.Strategy)}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if rep.Size, err = io.Copy(h, f); err != nil {
		return nil, err
	}
	rep.SHA256 = hex.EncodeToString(h.Sum(nil))
	a, err := bundle.Open(cmd.Context(), f, rep.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	defer a.Close()
	rep.Images = a.Contents().Images()
	return rep, nil
}

// progress is a bar over the bytes written, on a terminal and for a big (or
// piped) input only; a plain input's size is the output's, near enough.
func (o *reorderOptions) progress(cmd *cobra.Command, in string) *byteProgress {
	out := cmd.ErrOrStderr()
	size := int64(-1)
	if fi, err := os.Stat(in); in != "-" && err == nil {
		size = fi.Size()
	}
	if o.quiet || !isTerminal(out) || (size >= 0 && size < bigInput) {
		out = io.Discard
	}
	return newByteProgress(out, "writing")
}
