package platform

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Target is the platform a bundle is built for. Windows targets match
// os.version by build number, not by exact string, because every monthly
// patch changes the revision (10.0.17763.5458 vs 10.0.17763.5576).
type Target struct {
	Platform v1.Platform
	// Windows is set for Windows targets selected by release.
	Windows *WindowsVersion
}

// ParseTarget parses os/arch[/variant][:os.version]. An os.version on a
// windows platform is matched by build, like --windows-version.
func ParseTarget(s string) (Target, error) {
	p, err := v1.ParsePlatform(strings.TrimSpace(s))
	if err != nil || p.OS == "" || p.Architecture == "" {
		return Target{}, fmt.Errorf("invalid platform %q: use os/arch[/variant], e.g. linux/amd64 or windows/amd64:10.0.17763", s)
	}
	t := Target{Platform: v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}}
	if p.OSVersion != "" {
		v, err := ParseWindowsVersion(p.OSVersion)
		if err != nil {
			return Target{}, err
		}
		t.Windows = &v
		t.Platform.OSVersion = v.Build
	}
	return t, nil
}

// WindowsTarget is windows/amd64 for one Windows release.
func WindowsTarget(v WindowsVersion) Target {
	return Target{Platform: v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: v.Build}, Windows: &v}
}

// String is the platform as users write it, with the Windows build.
func (t Target) String() string {
	s := t.Platform.OS + "/" + t.Platform.Architecture
	if t.Platform.Variant != "" {
		s += "/" + t.Platform.Variant
	}
	if t.Windows != nil {
		s += ":" + t.Windows.Build
	}
	return s
}

// Placeholders returns the values of {version}, {os} and {arch} in output
// paths: the Windows release name as given, else os-arch[-variant].
func (t Target) Placeholders() map[string]string {
	version := t.Platform.OS + "-" + t.Platform.Architecture
	if t.Platform.Variant != "" {
		version += "-" + t.Platform.Variant
	}
	if t.Windows != nil {
		version = t.Windows.Name
	}
	return map[string]string{"{version}": version, "{os}": t.Platform.OS, "{arch}": t.Platform.Architecture}
}

// matchesArch compares os, architecture and variant. A missing variant on
// either side matches, as arm64 images often leave out "v8".
func (t Target) matchesArch(p v1.Platform) bool {
	if p.OS != t.Platform.OS || p.Architecture != t.Platform.Architecture {
		return false
	}
	return t.Platform.Variant == "" || p.Variant == "" || NormalVariant(p) == NormalVariant(t.Platform)
}

// NormalVariant is p's variant, with arm64's implied "v8" spelled out.
func NormalVariant(p v1.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "" {
		return "v8"
	}
	return p.Variant
}

// Match is how well a platform fits a target, from worst to best.
type Match int

const (
	// NoMatch: another os, architecture, variant or Windows build.
	NoMatch Match = iota
	// MatchNoOSVersion: a Windows image without os.version (built FROM
	// scratch), which may or may not suit the build.
	MatchNoOSVersion
	// MatchExact: os, architecture, variant and Windows build all fit.
	MatchExact
)

// Match says whether p fits t, and whether that is a real build match or a
// Windows image that carries no os.version (built FROM scratch).
func (t Target) Match(p v1.Platform) Match {
	switch err := t.Check(p); {
	case err == nil:
		return MatchExact
	case errors.Is(err, ErrNoOSVersion):
		return MatchNoOSVersion
	}
	return NoMatch
}

// Select picks the image manifest of idx for t, as ferry bundle does: among
// entries of the right build the highest revision wins; an entry without
// os.version is the fallback. Entries that are not image manifests, or
// give no platform, are never picked.
func Select(idx *v1.IndexManifest, t Target) (v1.Descriptor, Match) {
	best, bestSel, bestRev := v1.Descriptor{}, NoMatch, int64(-2)
	for _, d := range idx.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		sel := t.Match(*d.Platform)
		rev := revisionOf(d.Platform.OSVersion)
		if sel > bestSel || (sel == bestSel && sel != NoMatch && rev > bestRev) {
			best, bestSel, bestRev = d, sel, rev
		}
	}
	return best, bestSel
}

// Describe lists what an index offers, for "no match" errors.
func Describe(idx *v1.IndexManifest) string {
	var out []string
	for _, d := range idx.Manifests {
		if d.Platform != nil {
			out = append(out, d.Platform.String())
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "no platforms"
	}
	return strings.Join(out, ", ")
}

// ErrNoOSVersion is returned by Target.Check for a Windows image without
// os.version (built FROM scratch): it may or may not suit the build.
var ErrNoOSVersion = errors.New("image has no os.version")

// Check says why an image's platform (from its config) does not suit t,
// with the same rules used to select images: os and architecture exactly,
// variant when both name one, a Windows os.version by build number.
func (t Target) Check(p v1.Platform) error {
	switch {
	case !t.matchesArch(p):
		return fmt.Errorf("image is %s, not %s", p.String(), t)
	case t.Windows == nil:
		return nil
	case p.OSVersion == "":
		return fmt.Errorf("%w (built FROM scratch?), so its Windows build is unknown", ErrNoOSVersion)
	case !t.Windows.Matches(p.OSVersion):
		return fmt.Errorf("os.version %s is not build %s (%s)", p.OSVersion, t.Windows.Build, t.Windows.Name)
	}
	return nil
}

// ParseTargets reads the --platform and --windows-version flags every
// command shares: a comma-separated list of either. Windows releases imply
// windows/amd64, so a platform other than that alongside them is an error.
func ParseTargets(platforms, windowsVersions string) ([]Target, error) {
	if windowsVersions != "" {
		if platforms != "" && !strings.HasPrefix(platforms, "windows/amd64") {
			return nil, fmt.Errorf("--windows-version implies windows/amd64; drop --platform %s", platforms)
		}
		versions, err := ParseWindowsVersions(windowsVersions)
		if err != nil {
			return nil, err
		}
		out := make([]Target, len(versions))
		for i, v := range versions {
			out[i] = WindowsTarget(v)
		}
		return out, nil
	}
	var out []Target
	seen := map[string]string{}
	for _, p := range strings.Split(platforms, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		t, err := ParseTarget(p)
		if err != nil {
			return nil, err
		}
		if first, ok := seen[t.String()]; ok {
			return nil, fmt.Errorf("platform %s %w: %q and %q; keep one", t, ErrDuplicateTarget, first, strings.TrimSpace(p))
		}
		seen[t.String()] = strings.TrimSpace(p)
		out = append(out, t)
	}
	return out, nil
}
