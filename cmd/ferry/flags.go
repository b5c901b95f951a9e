package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/rancher/ferry/registry"
)

// registerGlobalFlags adds the flags every command shares to the root: the
// registry settings (so `ferry --insecure-registry H push …` and
// `ferry push … --insecure-registry H` mean the same), parallelism and -v.
func registerGlobalFlags(fs *pflag.FlagSet) {
	fs.Duration("response-timeout", registry.DefaultResponseTimeout, "give up on (and retry) a registry request whose response headers take longer than this; 0: no limit")
	fs.Duration("read-timeout", registry.DefaultReadTimeout, "give up on (and retry) a download that receives nothing for this long; a slow one that keeps receiving is never cut; 0: no limit")
	fs.StringArray("insecure-registry", nil, "allow plain HTTP or unverified TLS for this registry host (repeatable); for a private CA set SSL_CERT_FILE instead")
	fs.Int("jobs", 0, "work in parallel: blobs fetched or uploaded at once (0: 4), layers verify decompresses at once (0: one per CPU)")
	fs.BoolP("verbose", "v", false, "log every registry request and retry to stderr (credentials and signed URL queries left out); serve: every request it answers")
}

// jobs is --jobs, or def when it is 0.
func jobs(cmd *cobra.Command, def int) (int, error) {
	n, err := cmd.Flags().GetInt("jobs")
	if err != nil {
		return 0, err
	}
	switch {
	case n < 0:
		return 0, fmt.Errorf("--jobs %d: give a positive number, or 0 for the default", n)
	case n == 0:
		return def, nil
	}
	return n, nil
}

// verbose is -v.
func verbose(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("verbose")
	return v
}

// registryClient builds the registry.Client every registry command shares from
// the root's flags; warn gets non-fatal findings.
func registryClient(cmd *cobra.Command, warn io.Writer) (*registry.Client, error) {
	fs := cmd.Flags()
	insecure, err := fs.GetStringArray("insecure-registry")
	if err != nil {
		return nil, err
	}
	n, err := jobs(cmd, 4)
	if err != nil {
		return nil, err
	}
	opts := []registry.Option{
		registry.WithInsecureRegistries(insecure...),
		registry.WithJobs(n),
		registry.WithWarnings(warn),
	}
	if d, err := fs.GetDuration("response-timeout"); err == nil {
		opts = append(opts, registry.WithResponseTimeout(d))
	}
	if d, err := fs.GetDuration("read-timeout"); err == nil {
		opts = append(opts, registry.WithReadTimeout(d))
	}
	if verbose(cmd) {
		opts = append(opts, registry.WithRequestLog(warn))
	}
	return registry.NewClient(opts...)
}

// cpuJobs is the default parallelism of CPU-bound work.
func cpuJobs() int { return runtime.GOMAXPROCS(0) }

// isTerminal reports whether w is a terminal, to choose a progress bar over
// plain progress lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
