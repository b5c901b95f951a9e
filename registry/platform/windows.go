package platform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnknownWindowsVersion is returned for a Windows version that is neither a
// known release name nor a 10.0.N build.
var ErrUnknownWindowsVersion = errors.New("unknown Windows version")

// ErrWindowsRevision is returned for a Windows version with a revision
// (10.0.17763.5458). Targets name a build, and every image of that build
// matches, the highest revision first: monthly patches change the revision,
// so a pinned one would stop matching the next time upstream lists move.
var ErrWindowsRevision = errors.New("a Windows version names a build, not a revision")

// ErrDuplicateTarget is returned when a list names one platform or Windows
// build twice, perhaps under two names (1809 and ltsc2019): only one bundle
// or entry could come of it.
var ErrDuplicateTarget = errors.New("named twice")

// WindowsVersion is a Windows release as users name it ("1809", "ltsc2022")
// together with the build number every image for it carries in os.version.
type WindowsVersion struct {
	// Name is what the user typed; it fills {version} in output paths.
	Name string
	// Build is "10.0.N": the major.minor.build that os.version must share.
	Build string
}

// windowsBuilds lists releases by the names rke2, k3s and Microsoft use. The
// build numbers are what mcr.microsoft.com images carry in os.version.
var windowsBuilds = map[string]string{
	"1809":     "10.0.17763",
	"ltsc2019": "10.0.17763",
	"1903":     "10.0.18362",
	"1909":     "10.0.18363",
	"2004":     "10.0.19041",
	"20h2":     "10.0.19042",
	"ltsc2022": "10.0.20348",
	"23h2":     "10.0.25398",
	"2025":     "10.0.26100",
	"ltsc2025": "10.0.26100",
}

// KnownWindowsVersions returns the release names ParseWindowsVersion accepts,
// for help texts and error messages.
func KnownWindowsVersions() []string {
	return []string{"1809|ltsc2019", "1903", "1909", "2004", "20H2", "ltsc2022", "23H2", "2025|ltsc2025", "10.0.N"}
}

// ParseWindowsVersion accepts a release name (case-insensitive) or a raw
// build such as 10.0.17763. A revision (10.0.17763.5458) is refused with
// ErrWindowsRevision rather than silently dropped.
func ParseWindowsVersion(s string) (WindowsVersion, error) {
	name := strings.TrimSpace(s)
	if build, ok := windowsBuilds[strings.ToLower(name)]; ok {
		return WindowsVersion{Name: name, Build: build}, nil
	}
	if build, ok := BuildOf(name); ok {
		if build != name {
			return WindowsVersion{}, fmt.Errorf("%w: %q: give %s (ferry takes the highest revision of that build)", ErrWindowsRevision, s, build)
		}
		return WindowsVersion{Name: name, Build: build}, nil
	}
	return WindowsVersion{}, fmt.Errorf("%w %q: use one of %s", ErrUnknownWindowsVersion, s, strings.Join(KnownWindowsVersions(), ", "))
}

// ParseWindowsVersions splits a comma-separated list, keeping the user's
// order so output files come out in the order asked for. Two names of one
// build (1809,ltsc2019) are an ErrDuplicateTarget naming both.
func ParseWindowsVersions(list string) ([]WindowsVersion, error) {
	var out []WindowsVersion
	seen := map[string]string{}
	for _, part := range strings.Split(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		v, err := ParseWindowsVersion(part)
		if err != nil {
			return nil, err
		}
		if first, ok := seen[v.Build]; ok {
			return nil, fmt.Errorf("Windows build %s %w: %q and %q; keep one", v.Build, ErrDuplicateTarget, first, v.Name)
		}
		seen[v.Build] = v.Name
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrUnknownWindowsVersion)
	}
	return out, nil
}

// BuildOf reduces an os.version such as 10.0.17763.5458 to "10.0.17763";
// false means it is not a Windows os.version.
func BuildOf(osVersion string) (string, bool) {
	parts := strings.Split(osVersion, ".")
	if len(parts) < 3 || len(parts) > 4 {
		return "", false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return "", false
		}
	}
	return strings.Join(parts[:3], "."), true
}

// revisionOf returns the fourth component of an os.version, or -1 if absent,
// so that the highest revision of a build can be chosen.
func revisionOf(osVersion string) int64 {
	parts := strings.Split(osVersion, ".")
	if len(parts) != 4 {
		return -1
	}
	n, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// Matches reports whether an image's os.version belongs to this release.
func (v WindowsVersion) Matches(osVersion string) bool {
	b, ok := BuildOf(osVersion)
	return ok && b == v.Build
}
