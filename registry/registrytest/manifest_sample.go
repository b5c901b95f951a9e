package registrytest

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/registry/platform"
)

// SampleListSources are the sample set's per-platform tags on host, as a
// release publishes them before combining them into one tag with
// registry.Client.CreateIndex: linux/amd64, then each Windows release.
func SampleListSources(host string) []string {
	base := host + "/" + SampleRuntime + ":" + SampleRuntimeTag
	out := []string{base + "-linux-amd64"}
	for _, w := range SampleWindows {
		out = append(out, base+"-windows-"+w.Name)
	}
	return out
}

// SampleListRequire is what a list made from SampleListSources must hold,
// for registry.Client.VerifyIndex: linux/amd64 and one entry per sample Windows release.
func SampleListRequire() []platform.Target {
	out := []platform.Target{{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}}
	for _, w := range SampleWindows {
		v, err := platform.ParseWindowsVersion(w.Name)
		if err != nil {
			panic(err) // SampleWindows names are known releases
		}
		out = append(out, platform.WindowsTarget(v))
	}
	return out
}
