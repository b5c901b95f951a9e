package registry

import v1 "github.com/google/go-containerregistry/pkg/v1"

// SampleListSources are the sample set's per-platform tags on host, as a
// release publishes them before combining them into one tag with
// CreateIndex: linux/amd64, then each Windows release.
func SampleListSources(host string) []string {
	base := host + "/" + SampleRuntime + ":" + SampleRuntimeTag
	out := []string{base + "-linux-amd64"}
	for _, w := range SampleWindows {
		out = append(out, base+"-windows-"+w.Name)
	}
	return out
}

// SampleListRequire is what a list made from SampleListSources must hold,
// for VerifyIndex: linux/amd64 and one entry per sample Windows release.
func SampleListRequire() []Target {
	out := []Target{{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}}
	for _, w := range SampleWindows {
		v, err := ParseWindowsVersion(w.Name)
		if err != nil {
			panic(err) // SampleWindows names are known releases
		}
		out = append(out, WindowsTarget(v))
	}
	return out
}
