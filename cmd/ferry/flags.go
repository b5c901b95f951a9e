package main

import (
	"io"
	"os"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/rancher/ferry/registry"
)

// registryFlags are the registry settings every command that talks to a
// registry shares, so they all build the same registry.Client.
type registryFlags struct {
	insecure []string
	jobs     int
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.insecure, "insecure-registry", nil, "allow plain HTTP or unverified TLS for this registry host (repeatable); for a private CA set SSL_CERT_FILE instead")
	fs.IntVar(&f.jobs, "jobs", 4, "blobs to fetch in parallel")
}

func (f *registryFlags) client(warn io.Writer) (*registry.Client, error) {
	return registry.NewClient(
		registry.WithInsecureRegistries(f.insecure...),
		registry.WithJobs(f.jobs),
		registry.WithWarnings(warn),
	)
}

// isTerminal reports whether w is a terminal, to choose a progress bar over
// plain progress lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
