package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildInfo is what `ferry version` reports, from the binary's build info.
type buildInfo struct {
	SchemaVersion int    `json:"schemaVersion"`
	Version       string `json:"version"`
	Revision      string `json:"revision,omitempty"`
	Time          string `json:"time,omitempty"`
	Modified      bool   `json:"modified,omitempty"`
	Go            string `json:"go"`
}

// readBuildInfo fills buildInfo from runtime/debug. `go build` with
// -buildvcs=false, or a build outside a repository, records no revision:
// then there is none to print rather than a made-up one.
func readBuildInfo() buildInfo {
	b := buildInfo{SchemaVersion: schemaVersion, Version: "(devel)", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func (b buildInfo) String() string {
	s := b.Version
	if b.Revision != "" {
		s += ", commit " + b.Revision
		if b.Modified {
			s += " (modified)"
		}
	}
	return s + ", " + b.Go
}

func newVersionCmd() *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ferry's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			b := readBuildInfo()
			if format.json() {
				return writeJSON(cmd.OutOrStdout(), b)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "ferry %s\n", b)
			return err
		},
	}
	addFormatFlag(cmd, &format, false)
	return cmd
}
