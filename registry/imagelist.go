package registry

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ReadImageList reads an rke2-style images.txt: one reference per line,
// with blank lines and # comments ignored. Duplicates are dropped.
func ReadImageList(r io.Reader) ([]string, error) {
	var refs []string
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.ContainsAny(text, " \t") {
			return nil, fmt.Errorf("line %d: %q: one image reference per line", line, text)
		}
		refs = append(refs, text)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return Dedupe(refs), nil
}

// Dedupe drops repeated references, keeping first occurrences in order.
func Dedupe(refs []string) []string {
	seen := map[string]bool{}
	out := refs[:0:0]
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
