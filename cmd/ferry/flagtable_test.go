package main

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// tableRow is one row of the README's flag table.
type tableRow struct {
	shorthand string
	commands  map[string]bool
	root      bool
}

// readFlagTable parses the README's flag table: the flag cell gives the
// name and shorthand, the commands cell the command paths in backquotes,
// or "every command (root)" for the root's persistent flags.
func readFlagTable(t *testing.T) map[string]tableRow {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	begin, end := strings.Index(text, "<!-- flag-table: begin -->"), strings.Index(text, "<!-- flag-table: end -->")
	if begin < 0 || end < begin {
		t.Fatal("README has no flag table")
	}
	flagRE := regexp.MustCompile("^`(?:-(\\w), )?--([a-z-]+)")
	cmdRE := regexp.MustCompile("`([a-z ]+)`")
	rows := map[string]tableRow{}
	for _, line := range strings.Split(text[begin:end], "\n") {
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "/"), "|")
		if len(cells) < 4 {
			continue
		}
		m := flagRE.FindStringSubmatch(strings.TrimSpace(cells[1]))
		if m == nil {
			continue
		}
		row := tableRow{shorthand: m[1], commands: map[string]bool{}, root: strings.Contains(cells[2], "every command (root)")}
		for _, c := range cmdRE.FindAllStringSubmatch(cells[2], -1) {
			row.commands[c[1]] = true
		}
		rows[m[2]] = row
	}
	if len(rows) < 10 {
		t.Fatalf("read %d rows from the flag table", len(rows))
	}
	return rows
}

// visibleCommands walks the tree: every command a user sees, by path
// without "ferry ".
func visibleCommands(c *cobra.Command, out map[string]*cobra.Command) {
	for _, sub := range c.Commands() {
		if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		if sub.Runnable() {
			out[strings.TrimPrefix(sub.CommandPath(), "ferry ")] = sub
		}
		visibleCommands(sub, out)
	}
}

func visible(f *pflag.Flag) bool { return !f.Hidden && f.Deprecated == "" && f.Name != "help" }

// TestFlagTable holds every command to the README's flag table: a flag in
// the table is on exactly the commands it lists, with its shorthand; a
// flag two commands share, or one with a shorthand, is in the table; -o is
// always --output (a path), -f always --file (an image list), and --format
// always text or json.
func TestFlagTable(t *testing.T) {
	rows := readFlagTable(t)
	root := NewRootCmd()
	cmds := map[string]*cobra.Command{}
	visibleCommands(root, cmds)

	for name, row := range rows {
		if row.root {
			f := root.PersistentFlags().Lookup(name)
			if f == nil || f.Shorthand != row.shorthand {
				t.Errorf("--%s: the table says a root flag with shorthand %q; root has %v", name, row.shorthand, f)
			}
			continue
		}
		for path, c := range cmds {
			f := c.LocalNonPersistentFlags().Lookup(name)
			has := f != nil && visible(f)
			if has != row.commands[path] {
				t.Errorf("--%s: table says %q has it: %v; the command says %v", name, path, row.commands[path], has)
			}
			if has && f.Shorthand != row.shorthand && f.ShorthandDeprecated == "" {
				t.Errorf("%s --%s: shorthand %q, table says %q", path, name, f.Shorthand, row.shorthand)
			}
		}
		for path := range row.commands {
			if cmds[path] == nil {
				t.Errorf("--%s: the table names %q, which is no command", name, path)
			}
		}
	}

	shared := map[string][]string{}
	for path, c := range cmds {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !visible(f) {
				return
			}
			shared[f.Name] = append(shared[f.Name], path)
			if f.Shorthand != "" && f.ShorthandDeprecated == "" {
				if _, ok := rows[f.Name]; !ok {
					t.Errorf("%s -%s, --%s has a shorthand but is not in the table", path, f.Shorthand, f.Name)
				}
				if want := map[string]string{"o": "output", "f": "file"}[f.Shorthand]; want != "" && want != f.Name {
					t.Errorf("%s: -%s is --%s, but -%s is always --%s", path, f.Shorthand, f.Name, f.Shorthand, want)
				}
			}
		})
		if f := c.Flags().Lookup("format"); f != nil && visible(f) {
			got, _ := c.GetFlagCompletionFunc("format")
			if got == nil {
				t.Errorf("%s --format has no completion", path)
				continue
			}
			values, _ := got(c, nil, "")
			if strings.Join(values, ",") != "text,json" {
				t.Errorf("%s --format completes %v, want text,json", path, values)
			}
		}
	}
	for name, paths := range shared {
		if _, ok := rows[name]; !ok && len(paths) > 1 {
			sort.Strings(paths)
			t.Errorf("--%s is on %v but not in the flag table", name, paths)
		}
	}
}
