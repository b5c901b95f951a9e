package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/catalog"
	"github.com/rancher/ferry/registry/serve"
)

type serveOptions struct {
	addr, cert, key, prefix string
}

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve BUNDLE...",
		Short: "Serve bundles as a read-only registry, without unpacking them",
		Long: `Serve answers the OCI distribution API (pull only) from the bundles as they
are: blobs are read by offset from plain tar and through the seek table of
ferry zstd bundles. A tag held by several bundles (one per Windows version)
resolves to one list of them all. Names drop their registry host, as in
'ferry push'; --prefix mounts them under a path. Each blob is checked against
its digest on its first read; a damaged one is never served.

Without --tls-cert and --tls-key the address must be a loopback one.
-v logs every request.`,
		Args: cobra.MinimumNArgs(1),
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:5000", "address to listen on (port 0 picks a free one)")
	f.StringVar(&o.cert, "tls-cert", "", "TLS certificate (PEM), with --tls-key")
	f.StringVar(&o.key, "tls-key", "", "TLS private key (PEM), with --tls-cert")
	f.StringVar(&o.prefix, "prefix", "", "serve every repository under this path")
	return cmd
}

func (o *serveOptions) run(cmd *cobra.Command, args []string) error {
	if (o.cert == "") != (o.key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.cert == "" && !loopback(o.addr) {
		return fmt.Errorf("--addr %s: plain HTTP is served on loopback only; give --tls-cert and --tls-key to listen there", o.addr)
	}
	archives, err := openBundles(cmd, args)
	defer func() {
		for _, a := range archives {
			a.Close()
		}
	}()
	if err != nil {
		return err
	}
	cat, err := catalog.New(archives, catalog.WithPrefix(o.prefix))
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if verbose(cmd) {
		level = slog.LevelInfo
	}
	h, err := serve.New(cat, serve.WithLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if o.cert != "" {
		scheme = "https"
	}
	repos, tags := cat.Repositories(), 0
	for _, r := range repos {
		t, _ := cat.Tags(r)
		tags += len(t)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "serving %d repositories, %d tags at %s://%s\n", len(repos), tags, scheme, ln.Addr())
	return o.listen(cmd.Context(), ln, h)
}

// openBundles opens each bundle and reports what opening it cost.
func openBundles(cmd *cobra.Command, paths []string) ([]*bundle.Archive, error) {
	var archives []*bundle.Archive
	for _, p := range paths {
		start := time.Now()
		a, err := bundle.OpenPath(cmd.Context(), p)
		if err != nil {
			return archives, err
		}
		archives = append(archives, a)
		fmt.Fprintf(cmd.OutOrStdout(), "opened %s: %d images, %d entries, %s inflated in %s\n",
			p, len(a.Images()), len(a.Contents().Sizes), humanBytes(a.Inflated()), time.Since(start).Round(time.Millisecond))
		if !a.Seekable() {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is %s without a seek table: a blob read decompresses it from the start; 'ferry reorder %s -o OUT.tar.zst' makes it seekable\n",
				p, a.Compression(), p)
		}
	}
	return archives, nil
}

// listen serves until ctx ends (SIGINT, SIGTERM), then lets requests in
// flight finish for a while.
func (o *serveOptions) listen(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() {
		if o.cert != "" {
			done <- srv.ServeTLS(ln, o.cert, o.key)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
