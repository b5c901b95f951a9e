package main

import (
	"fmt"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
)

type listOptions struct {
	format formatFlag
}

func newListCmd() *cobra.Command {
	o := &listOptions{}
	cmd := &cobra.Command{
		Use:   "list BUNDLE|-",
		Short: "List the images in a bundle or any image tarball",
		Long: `List reads only the metadata at the head of a metadata-first bundle. Any other
image tarball (docker save, crane, skopeo, podman) is read to the end; ferry
then says so, and 'ferry reorder' makes it metadata-first. '-' reads stdin.`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	addFormatFlag(cmd, &o.format, true)
	return cmd
}

// listReport is `ferry list --format json`.
type listReport struct {
	SchemaVersion int                `json:"schemaVersion"`
	File          string             `json:"file"`
	Compression   bundle.Compression `json:"compression"`
	MetadataFirst bool               `json:"metadataFirst"`
	BytesRead     int64              `json:"decompressedBytesRead"`
	Images        []bundle.ImageInfo `json:"images"`
}

func (o *listOptions) run(cmd *cobra.Command, args []string) error {
	if err := o.format.check(); err != nil {
		return err
	}
	c, err := readContents(cmd, args[0])
	if err != nil {
		return err
	}
	rep := listReport{SchemaVersion: schemaVersion, File: args[0], Compression: c.Compression, MetadataFirst: c.MetadataFirst, BytesRead: c.BytesRead, Images: c.Images()}
	if o.format.json() {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	printImageTable(cmd, rep)
	if !c.MetadataFirst {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is not metadata-first, so it was read to the end; 'ferry reorder %s' fixes that\n", args[0], args[0])
	}
	return nil
}

func printImageTable(cmd *cobra.Command, rep listReport) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tDIGEST\tLAYERS\tSIZE")
	for _, img := range rep.Images {
		names := "<none>"
		if len(img.Names) > 0 {
			names = img.Names[0]
			for _, n := range img.Names[1:] {
				names += "," + n
			}
		}
		digest := img.Digest
		if digest == "" {
			digest = "-"
		}
		layers := fmt.Sprint(img.Layers)
		if img.Missing > 0 {
			layers += fmt.Sprintf(" (%d not stored)", img.Missing)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", names, platformString(img.Platform), digest, layers, humanBytes(img.Size))
	}
	tw.Flush()
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "-"
	}
	return p.String()
}

// readContents lists a file through bundle.Open, which reads only headers
// and metadata where the archive allows it, and standard input ("-") as a
// stream.
func readContents(cmd *cobra.Command, path string) (*bundle.Contents, error) {
	if path == "-" {
		c, err := bundle.ReadContents(cmd.Context(), cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("standard input: %w", err)
		}
		return c, nil
	}
	a, err := bundle.OpenPath(cmd.Context(), path)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return a.Contents(), nil
}
