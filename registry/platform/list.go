package platform

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseTargetList parses comma-separated platforms, as in --require
// linux/amd64,windows/amd64:1809.
func ParseTargetList(list string) ([]Target, error) {
	var out []Target
	for _, part := range strings.Split(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		t, err := ParseTarget(part)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// ReadTargetList reads platforms one per line; blank lines and # comments
// are skipped, so a release can keep its platform list in a file.
func ReadTargetList(r io.Reader) ([]Target, error) {
	var out []Target
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		ts, err := ParseTargetList(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, ts...)
	}
	return out, sc.Err()
}
