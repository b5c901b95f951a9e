package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// schemaVersion is in every JSON document ferry prints. It changes only
// when a field is removed or changes meaning; new fields keep it.
const schemaVersion = 1

// formatFlag is --format: text (for people) or json (for pipelines).
type formatFlag struct{ value string }

// addFormatFlag registers --format, with completion. Commands that once took
// -o/--output FORMAT keep that spelling, hidden, with a warning on use.
func addFormatFlag(cmd *cobra.Command, f *formatFlag, legacyOutput bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.value, "format", "text", "report format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("text", "json"))
	if legacyOutput {
		fs.StringVarP(&f.value, "output", "o", "text", "report format (deprecated: use --format)")
		_ = fs.MarkDeprecated("output", "use --format; -o/--output names a file in every ferry command")
	}
}

// check validates the value; "table" is an old name for text.
func (f *formatFlag) check() error {
	switch f.value {
	case "table":
		f.value = "text"
	case "text", "json":
	default:
		return fmt.Errorf("--format %q: use text or json", f.value)
	}
	return nil
}

func (f *formatFlag) json() bool { return f.value == "json" }

// writeJSON prints v indented, as every command's JSON report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fixedCompletion completes a flag's value from a closed set.
func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, v := range values {
			if strings.HasPrefix(strings.ToLower(v), strings.ToLower(prefix)) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
