package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the main job end to end on its embedded registry.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := ferry(t, "demo", "--dir", dir, "--size", "262144")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, v := range []string{"1809", "ltsc2022", "2025"} {
		if _, err := os.Stat(filepath.Join(dir, "rke2-windows-"+v+"-amd64-images.tar.zst")); err != nil {
			t.Error(err)
		}
	}
	for _, want := range []string{"windows/amd64:10.0.17763.5458", "windows/amd64:10.0.26100.2894", "verified: 3 images", "verified: 44 checks passed", "promotion:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
