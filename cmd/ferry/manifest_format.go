package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/registry"
)

// writeListTable prints a list for people: its digest, then one row per
// entry with the platform (os.version included), digest, size, media type.
func writeListTable(w io.Writer, l *registry.ManifestList) error {
	fmt.Fprintf(w, "%s\ndigest:     %s\nmedia type: %s\nsize:       %d\n\n", l.Reference, l.Digest, l.MediaType, l.Size)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tDIGEST\tSIZE\tMEDIA TYPE")
	for _, d := range l.Manifests {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", describeEntry(d), d.Digest, d.Size, d.MediaType)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\npromotion: %s\n", l.PromotionLine())
	return err
}

// describeEntry is the platform with os.features, which Windows uses.
func describeEntry(d v1.Descriptor) string {
	if d.Platform == nil {
		return "(no platform)"
	}
	s := d.Platform.String()
	if len(d.Platform.OSFeatures) > 0 {
		s += " [" + strings.Join(d.Platform.OSFeatures, ",") + "]"
	}
	return s
}

// writeIndexReport prints a manifest list report for people: list-wide
// checks, then each entry with its failures spelled out and its passes
// summed up.
func writeIndexReport(w io.Writer, r *registry.IndexReport) error {
	fmt.Fprintf(w, "%s\ndigest:     %s\nmedia type: %s\n\n", r.Reference, r.Digest, r.MediaType)
	type entry struct {
		title  string
		passed []string
		failed []registry.Check
	}
	var entries []*entry
	byDigest := map[string]*entry{}
	for _, c := range r.Checks {
		if c.Digest == "" {
			writeCheck(w, "", c)
			continue
		}
		key := c.Platform + " " + c.Digest
		e := byDigest[key]
		if e == nil {
			e = &entry{title: key}
			byDigest[key] = e
			entries = append(entries, e)
		}
		if c.OK {
			e.passed = append(e.passed, c.Name)
		} else {
			e.failed = append(e.failed, c)
		}
	}
	for _, e := range entries {
		status := "ok  "
		if len(e.failed) > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s\n", status, e.title)
		for _, c := range e.failed {
			writeCheck(w, "      ", c)
		}
		if len(e.passed) > 0 {
			fmt.Fprintf(w, "      passed: %s\n", summarize(e.passed))
		}
	}
	if r.OK {
		_, err := fmt.Fprintf(w, "\nverified: %d checks passed\n", len(r.Checks))
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d of %d checks failed\n", r.Problems, len(r.Checks))
	return err
}

func writeCheck(w io.Writer, indent string, c registry.Check) {
	status := "ok  "
	if !c.OK {
		status = "FAIL"
	}
	line := indent + status + "  " + c.Name
	if c.Subject != "" {
		line += " " + c.Subject
	}
	if c.Detail != "" {
		line += ": " + c.Detail
	}
	fmt.Fprintln(w, line)
}

// summarize lists check names in order, counting repeats ("blob x3").
func summarize(names []string) string {
	var order []string
	count := map[string]int{}
	for _, n := range names {
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	for i, n := range order {
		if count[n] > 1 {
			order[i] = fmt.Sprintf("%s x%d", n, count[n])
		}
	}
	return strings.Join(order, ", ")
}
