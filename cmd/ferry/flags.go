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
	// fs is the command's flag set, which holds the root's persistent
	// network flags once cobra has parsed the command line.
	fs *pflag.FlagSet
}

// registerNetworkFlags adds the network limits every registry command
// shares to the root command.
func registerNetworkFlags(fs *pflag.FlagSet) {
	fs.Duration("response-timeout", registry.DefaultResponseTimeout, "give up on (and retry) a registry request whose response headers take longer than this; 0: no limit")
	fs.Duration("read-timeout", registry.DefaultReadTimeout, "give up on (and retry) a download that receives nothing for this long; a slow one that keeps receiving is never cut; 0: no limit")
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringArrayVar(&f.insecure, "insecure-registry", nil, "allow plain HTTP or unverified TLS for this registry host (repeatable); for a private CA set SSL_CERT_FILE instead")
	fs.IntVar(&f.jobs, "jobs", 4, "blobs to fetch in parallel")
}

func (f *registryFlags) client(warn io.Writer) (*registry.Client, error) {
	opts := []registry.Option{
		registry.WithInsecureRegistries(f.insecure...),
		registry.WithJobs(f.jobs),
		registry.WithWarnings(warn),
	}
	if f.fs != nil {
		if d, err := f.fs.GetDuration("response-timeout"); err == nil {
			opts = append(opts, registry.WithResponseTimeout(d))
		}
		if d, err := f.fs.GetDuration("read-timeout"); err == nil {
			opts = append(opts, registry.WithReadTimeout(d))
		}
	}
	return registry.NewClient(opts...)
}

// isTerminal reports whether w is a terminal, to choose a progress bar over
// plain progress lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
