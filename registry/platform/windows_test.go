package platform

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParseWindowsVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1809": "10.0.17763", "ltsc2019": "10.0.17763", "LTSC2022": "10.0.20348", "20H2": "10.0.19042",
		"23h2": "10.0.25398", "2025": "10.0.26100", "ltsc2025": "10.0.26100", "10.0.17763": "10.0.17763",
		" 1903 ": "10.0.18362", "1909": "10.0.18363", "2004": "10.0.19041",
	} {
		v, err := ParseWindowsVersion(in)
		if err != nil || v.Build != want {
			t.Errorf("ParseWindowsVersion(%q) = %+v, %v; want build %s", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "xp", "10.0", "10.0.x", "1.2.3.4.5", "ltsc2016"} {
		if _, err := ParseWindowsVersion(bad); !errors.Is(err, ErrUnknownWindowsVersion) {
			t.Errorf("ParseWindowsVersion(%q) error = %v, want ErrUnknownWindowsVersion", bad, err)
		}
	}
}

func TestParseWindowsVersionsRefusesTwoNamesOfOneBuild(t *testing.T) {
	vs, err := ParseWindowsVersions("1809, ltsc2022,,2025")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	if len(vs) != 3 || names[0] != "1809" || names[1] != "ltsc2022" || names[2] != "2025" {
		t.Fatalf("got %v, want [1809 ltsc2022 2025]", names)
	}
	for list, both := range map[string][2]string{
		"1809,ltsc2019":       {`"1809"`, `"ltsc2019"`},
		"2025,10.0.26100":     {`"2025"`, `"10.0.26100"`},
		"ltsc2022, LTSC2022 ": {`"ltsc2022"`, `"LTSC2022"`},
	} {
		_, err := ParseWindowsVersions(list)
		if !errors.Is(err, ErrDuplicateTarget) || !strings.Contains(err.Error(), both[0]) || !strings.Contains(err.Error(), both[1]) {
			t.Errorf("ParseWindowsVersions(%q) error = %v, want ErrDuplicateTarget naming %s and %s", list, err, both[0], both[1])
		}
	}
}

func TestWindowsRevisionRefused(t *testing.T) {
	for _, in := range []string{"10.0.17763.999", "10.0.20348.2322"} {
		_, err := ParseWindowsVersion(in)
		if !errors.Is(err, ErrWindowsRevision) || !strings.Contains(err.Error(), in[:10]) {
			t.Errorf("ParseWindowsVersion(%q) error = %v, want ErrWindowsRevision suggesting the build", in, err)
		}
		if _, err := ParseTarget("windows/amd64:" + in); !errors.Is(err, ErrWindowsRevision) {
			t.Errorf("ParseTarget(windows/amd64:%s) error = %v, want ErrWindowsRevision", in, err)
		}
	}
}

func TestParseTargetsRefusesDuplicatePlatforms(t *testing.T) {
	_, err := ParseTargets("linux/amd64,linux/arm64, linux/amd64", "")
	if !errors.Is(err, ErrDuplicateTarget) {
		t.Fatalf("error = %v, want ErrDuplicateTarget", err)
	}
}

func TestMatchesByBuildNotPrefix(t *testing.T) {
	v, _ := ParseWindowsVersion("1809")
	for osv, want := range map[string]bool{
		"10.0.17763.5458": true, "10.0.17763": true, "10.0.177630.1": false, "10.0.1776.3": false, "": false, "10.0.20348.1": false,
	} {
		if got := v.Matches(osv); got != want {
			t.Errorf("1809 matches %q = %v, want %v", osv, got, want)
		}
	}
}

func idx(platforms ...v1.Platform) *v1.IndexManifest {
	m := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.DockerManifestList}
	for i, p := range platforms {
		p := p
		m.Manifests = append(m.Manifests, v1.Descriptor{
			MediaType: types.DockerManifestSchema2, Size: int64(i),
			Digest:   v1.Hash{Algorithm: "sha256", Hex: string(rune('a'+i)) + "000000000000000000000000000000000000000000000000000000000000000"},
			Platform: &p,
		})
	}
	return m
}

func win(osv string) v1.Platform {
	return v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: osv}
}

func TestSelectHighestRevision(t *testing.T) {
	v, _ := ParseWindowsVersion("1809")
	m := idx(v1.Platform{OS: "linux", Architecture: "amd64"}, win("10.0.17763.4010"), win("10.0.17763.5458"), win("10.0.17763.973"), win("10.0.20348.2322"))
	d, sel := Select(m, WindowsTarget(v))
	if sel != MatchExact || d.Platform.OSVersion != "10.0.17763.5458" {
		t.Fatalf("selected %v (%v), want 10.0.17763.5458", d.Platform, sel)
	}
}

func TestSelectExactOSVersionIsNotRequired(t *testing.T) {
	// rke2#10942: the requested os.version need not equal the image's.
	tg, err := ParseTarget("windows/amd64:10.0.20348")
	if err != nil {
		t.Fatal(err)
	}
	d, sel := Select(idx(win("10.0.17763.5458"), win("10.0.20348.2322")), tg)
	if sel != MatchExact || d.Platform.OSVersion != "10.0.20348.2322" {
		t.Fatalf("selected %v (%v)", d.Platform, sel)
	}
}

func TestSelectPrefersOSVersionOverNone(t *testing.T) {
	v, _ := ParseWindowsVersion("ltsc2022")
	d, sel := Select(idx(win(""), win("10.0.20348.2322")), WindowsTarget(v))
	if sel != MatchExact || d.Platform.OSVersion != "10.0.20348.2322" {
		t.Fatalf("selected %v (%v)", d.Platform, sel)
	}
	d, sel = Select(idx(win(""), win("10.0.17763.1")), WindowsTarget(v))
	if sel != MatchNoOSVersion || d.Platform.OSVersion != "" {
		t.Fatalf("without a build match want the entry lacking os.version, got %v (%v)", d.Platform, sel)
	}
}

func TestSelectNoMatch(t *testing.T) {
	v, _ := ParseWindowsVersion("2025")
	if _, sel := Select(idx(win("10.0.17763.1"), v1.Platform{OS: "linux", Architecture: "amd64"}), WindowsTarget(v)); sel != NoMatch {
		t.Fatalf("want no match, got %v", sel)
	}
	lin, _ := ParseTarget("linux/arm64")
	if _, sel := Select(idx(v1.Platform{OS: "linux", Architecture: "amd64"}), lin); sel != NoMatch {
		t.Fatalf("linux/arm64 matched linux/amd64")
	}
}

func TestSelectVariants(t *testing.T) {
	m := idx(v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, v1.Platform{OS: "linux", Architecture: "arm64"})
	for in, want := range map[string]string{"linux/arm/v7": "v7", "linux/arm/v6": "v6", "linux/arm64/v8": ""} {
		tg, err := ParseTarget(in)
		if err != nil {
			t.Fatal(err)
		}
		d, sel := Select(m, tg)
		if sel != MatchExact || d.Platform.Variant != want {
			t.Errorf("%s selected %v (%v)", in, d.Platform, sel)
		}
	}
}

func TestParseTargetRejectsGarbage(t *testing.T) {
	for _, bad := range []string{"", "linux", "/amd64", "windows/amd64:banana"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) succeeded", bad)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	v, _ := ParseWindowsVersion("ltsc2022")
	if got := WindowsTarget(v).Placeholders()["{version}"]; got != "ltsc2022" {
		t.Errorf("{version} = %q", got)
	}
	tg, _ := ParseTarget("linux/arm/v7")
	if got := tg.Placeholders()["{version}"]; got != "linux-arm-v7" {
		t.Errorf("{version} = %q", got)
	}
}

func TestTargetCheck(t *testing.T) {
	tg := windows(t, "ltsc2022")
	cases := []struct {
		p    v1.Platform
		want error
		ok   bool
	}{
		{win("10.0.20348.2322"), nil, true},
		{win(""), ErrNoOSVersion, false},
		{win("10.0.17763.1"), nil, false},
		{v1.Platform{OS: "linux", Architecture: "amd64"}, nil, false},
	}
	for _, c := range cases {
		err := tg.Check(c.p)
		if (err == nil) != c.ok || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Check(%v) = %v", c.p, err)
		}
	}
}

func TestParseTargets(t *testing.T) {
	ts, err := ParseTargets("", "1809,2025")
	if err != nil || len(ts) != 2 || ts[1].Windows.Build != "10.0.26100" {
		t.Fatalf("%v %v", ts, err)
	}
	ts, err = ParseTargets("linux/amd64,linux/arm64/v8", "")
	if err != nil || len(ts) != 2 || ts[1].Platform.Variant != "v8" {
		t.Fatalf("%v %v", ts, err)
	}
	if _, err := ParseTargets("linux/amd64", "1809"); err == nil {
		t.Fatal("linux platform with a Windows version accepted")
	}
	if ts, err := ParseTargets("", ""); err != nil || len(ts) != 0 {
		t.Fatalf("%v %v", ts, err)
	}
}

func windows(t *testing.T, name string) Target {
	t.Helper()
	v, err := ParseWindowsVersion(name)
	if err != nil {
		t.Fatal(err)
	}
	return WindowsTarget(v)
}
