package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/platform"
)

// placeholders are what -o and --checksums may hold; see Target.Placeholders.
var (
	placeholders  = []string{"{version}", "{os}", "{arch}"}
	placeholderRE = regexp.MustCompile(`\{[^{}/]*\}`)
)

// preflight refuses what the command line alone shows to be wrong.
func (o *bundleOptions) preflight() error {
	for flag, value := range map[string]string{"-o": o.output, "--checksums": o.checksums} {
		for _, p := range placeholderRE.FindAllString(value, -1) {
			if !contains(placeholders, p) {
				return fmt.Errorf("%s %q: unknown placeholder %s: use %s", flag, value, p, strings.Join(placeholders, ", "))
			}
		}
	}
	switch {
	case o.output == "-" && o.format.json():
		return fmt.Errorf("-o - writes the bundle to stdout, so --format json cannot: write to a file, or drop --format json")
	case o.output == "-" && o.sidecars:
		return fmt.Errorf("--sidecars names files after the bundle, and -o - has no name: give -o PATH")
	case o.checksums != "" && !o.sidecars:
		return fmt.Errorf("--checksums goes with --sidecars")
	}
	if o.compression != "" {
		if err := bundle.CheckCompression(bundle.Compression(o.compression), o.level); err != nil {
			return fmt.Errorf("--compression %s --level %d: %w", o.compression, o.level, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func fillPlaceholders(s string, t platform.Target) string {
	for k, v := range t.Placeholders() {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// checksumsPath is the sha256sum file a bundle's lines go to.
func (o *bundleOptions) checksumsPath(bundlePath string, t platform.Target) string {
	if o.checksums != "" {
		return fillPlaceholders(o.checksums, t)
	}
	return filepath.Join(filepath.Dir(bundlePath), fillPlaceholders("sha256sum-{arch}.txt", t))
}

// checkChecksums makes sure the checksums file's directory exists and takes
// files (bundle directories WriteBundles checks itself).
func (o *bundleOptions) checkChecksums(bundlePath string, t platform.Target) error {
	if !o.sidecars {
		return nil
	}
	dir := filepath.Dir(o.checksumsPath(bundlePath, t))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--checksums: %w", err)
	}
	f, err := os.CreateTemp(dir, ".ferry-probe-*")
	if err != nil {
		return fmt.Errorf("--checksums: directory %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// sidecarMu keeps two bundles from updating one checksums file at once.
var sidecarMu sync.Mutex

// writeSidecars writes BUNDLE.txt and records both files' sha256 in the
// checksums file, each file replaced atomically.
func (o *bundleOptions) writeSidecars(cmd *cobra.Command, r registry.BundleResult) error {
	if !o.sidecars {
		return nil
	}
	var list bytes.Buffer
	for _, img := range r.Images {
		fmt.Fprintln(&list, img.Name)
	}
	txt := r.Path + ".txt"
	ctx := cmd.Context()
	if err := writeAtomic(ctx, txt, list.Bytes()); err != nil {
		return err
	}
	sums := o.checksumsPath(r.Path, o.byPath[r.Path])
	sidecarMu.Lock()
	defer sidecarMu.Unlock()
	return updateChecksums(ctx, sums, map[string]string{r.Path: r.SHA256, txt: sha256Hex(list.Bytes())})
}

// updateChecksums rewrites a sha256sum file with a line per file (named
// relative to the checksums file, so `sha256sum -c` works from its
// directory), replacing lines for the same names and keeping the others.
func updateChecksums(ctx context.Context, path string, sums map[string]string) error {
	names := map[string]string{}
	for file, sum := range sums {
		name := file
		if rel, err := filepath.Rel(filepath.Dir(path), file); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		}
		names[name] = sum
	}
	var out bytes.Buffer
	if old, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(old))
		for sc.Scan() {
			_, name, _ := strings.Cut(sc.Text(), "  ")
			if _, replaced := names[name]; !replaced && strings.TrimSpace(sc.Text()) != "" {
				fmt.Fprintln(&out, sc.Text())
			}
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	for _, name := range sortedKeys(names) {
		fmt.Fprintf(&out, "%s  %s\n", names[name], name)
	}
	return writeAtomic(ctx, path, out.Bytes())
}

func writeAtomic(ctx context.Context, path string, data []byte) error {
	return bundle.WriteFileAtomic(ctx, path, func(_ context.Context, w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// bundleReport is `ferry bundle --format json`.
type bundleReport struct {
	SchemaVersion int          `json:"schemaVersion"`
	Bundles       []bundleJSON `json:"bundles"`
	Fetched       int64        `json:"fetchedBytes"`
}

type bundleJSON struct {
	Path        string             `json:"path"`
	Compression bundle.Compression `json:"compression"`
	Size        int64              `json:"size"`
	SHA256      string             `json:"sha256"`
	Images      []bundleImageJSON  `json:"images"`
}

type bundleImageJSON struct {
	Ref      string          `json:"ref"`
	Digest   string          `json:"digest"`
	Platform string          `json:"platform,omitempty"`
	Layers   []v1.Descriptor `json:"layers"`
}

func bundleEntry(r registry.BundleResult) bundleJSON {
	b := bundleJSON{Path: r.Path, Compression: r.Compression, Size: r.Size, SHA256: r.SHA256, Images: []bundleImageJSON{}}
	for _, img := range r.Images {
		j := bundleImageJSON{Ref: img.Name, Digest: img.Descriptor.Digest.String(), Layers: []v1.Descriptor{}}
		if p := img.Descriptor.Platform; p != nil {
			j.Platform = p.String()
		}
		if m, err := v1.ParseManifest(bytes.NewReader(img.Manifest)); err == nil {
			j.Layers = m.Layers
		}
		b.Images = append(b.Images, j)
	}
	return b
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
