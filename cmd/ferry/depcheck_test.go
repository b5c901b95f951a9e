package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/rancher/ferry"

// layering lists, per package (a trailing /... includes sub-packages),
// the ferry packages it must not depend on, directly or not. A package
// that matches several rules obeys them all.
var layering = []struct {
	pkg       string
	forbidden []string
	except    []string // allowed although a forbidden prefix matches
}{
	{pkg: "registry/platform", forbidden: []string{""}}, // "" is every ferry package
	{pkg: "reorder/...", forbidden: []string{"bundle", "registry", "cmd"}},
	{pkg: "bundle", forbidden: []string{"registry", "cmd"}},
	{pkg: "bundle/...", forbidden: []string{"registry", "cmd"}, except: []string{"registry/platform"}},
	{pkg: "registry/...", forbidden: []string{"cmd"}},
	// The sample set and test server are for tests and the demo only.
	{pkg: "...", forbidden: []string{"registry/registrytest"}},
}

// exempt are packages a rule for "..." does not apply to.
var exempt = map[string]bool{"cmd/ferry": true, "registry/registrytest": true}

// TestLayering enforces the package layering with `go list`, as
// go-containerregistry's depcheck does: only non-test dependencies count.
func TestLayering(t *testing.T) {
	deps := listDeps(t)
	if len(deps) < 8 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	checked := 0
	for pkg, ds := range deps {
		for _, rule := range layering {
			if !matches(rule.pkg, pkg) || (rule.pkg == "..." && exempt[pkg]) {
				continue
			}
			checked++
			for _, d := range ds {
				if forbidden(d, rule.forbidden, rule.except) {
					t.Errorf("%s depends on %s, which it must not", pkg, d)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no rule matched any package")
	}
	// Nothing may import the command.
	for pkg, ds := range deps {
		for _, d := range ds {
			if d == "cmd/ferry" || strings.HasPrefix(d, "cmd/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}

func matches(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func forbidden(dep string, prefixes, except []string) bool {
	if slices.Contains(except, dep) {
		return false
	}
	for _, p := range prefixes {
		if p == "" || dep == p || strings.HasPrefix(dep, p+"/") {
			return true
		}
	}
	return false
}

// listDeps maps each ferry package (module path trimmed) to the ferry
// packages it depends on.
func listDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	deps := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		var ours []string
		for _, d := range p.Deps {
			if rest, ok := strings.CutPrefix(d, module+"/"); ok {
				ours = append(ours, rest)
			}
		}
		deps[name] = ours
	}
	return deps
}
