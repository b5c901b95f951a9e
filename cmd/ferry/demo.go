package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/registry"
	"github.com/rancher/ferry/registry/registrytest"
)

type demoOptions struct {
	dir  string
	size int64
}

func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bundle a sample Windows image set from an embedded registry, end to end",
		Long: `demo starts an in-memory registry on 127.0.0.1 holding ferry's sample image set
(rke2-runtime and pause manifest lists with linux/amd64 and one windows/amd64
entry per Windows version, plus a FROM-scratch Windows image), then runs the
real 'ferry bundle' for every Windows version, 'ferry list' and 'ferry verify'
on each bundle, then publishes and verifies a manifest list.`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.dir, "dir", "ferry-demo", "directory for the image list, cache and bundles")
	cmd.Flags().Int64Var(&o.size, "size", 4<<20, "bytes of image data per Windows version")
	return cmd
}

func (o *demoOptions) run(cmd *cobra.Command, _ []string) error {
	out := cmd.OutOrStdout()
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	srv, err := registrytest.ServeMemory()
	if err != nil {
		return err
	}
	defer srv.Close()
	sample, err := registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: o.size})
	if err != nil {
		return err
	}
	client, err := registry.NewClient(registry.WithInsecureRegistries(srv.Host))
	if err != nil {
		return err
	}
	if err := sample.Push(cmd.Context(), client, srv.Host); err != nil {
		return err
	}
	fmt.Fprintf(out, "== embedded registry on %s holds the sample set\n", srv.Host)
	list := filepath.Join(o.dir, "windows-images.txt")
	if err := os.WriteFile(list, []byte(strings.Join(sample.Refs(srv.Host), "\n")+"\n"), 0o644); err != nil {
		return err
	}
	var versions []string
	for _, w := range registrytest.SampleWindows {
		versions = append(versions, w.Name)
	}
	pattern := filepath.Join(o.dir, "rke2-windows-{version}-amd64-images.tar.zst")
	bundleArgs := []string{"bundle", "-f", list, "--windows-version", strings.Join(versions, ","),
		"-o", pattern, "--insecure-registry", srv.Host, "--cache", filepath.Join(o.dir, "cache")}
	fmt.Fprintf(out, "== ferry %s\n", strings.Join(bundleArgs, " "))
	if err := o.sub(cmd, bundleArgs...); err != nil {
		return err
	}
	for _, v := range versions {
		path := strings.ReplaceAll(pattern, "{version}", v)
		for _, args := range [][]string{{"list", path}, {"verify", path, "-f", list, "--windows-version", v}} {
			fmt.Fprintf(out, "\n== ferry %s\n", strings.Join(args, " "))
			if err := o.sub(cmd, args...); err != nil {
				return err
			}
		}
	}
	if err := o.publish(cmd, srv.Host); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nmade %d bundles in %s, one per Windows version, metadata first,\n", len(versions), o.dir)
	fmt.Fprintf(out, "and published and verified a manifest list with a Windows os.version per entry\n")
	return nil
}

// publish does what a release pipeline does after building per-platform
// images: one list over them, then a check of what was published.
func (o *demoOptions) publish(cmd *cobra.Command, host string) error {
	list := host + "/" + registrytest.SampleRuntime + ":" + strings.TrimSuffix(registrytest.SampleRuntimeTag, "-rke2r1")
	var require []string
	for _, t := range registrytest.SampleListRequire() {
		require = append(require, t.String())
	}
	steps := [][]string{
		append([]string{"manifest", "create", list, "--insecure-registry", host}, registrytest.SampleListSources(host)...),
		{"manifest", "inspect", list, "--insecure-registry", host},
		{"manifest", "verify", list, "--require", strings.Join(require, ","), "--insecure-registry", host},
	}
	for _, args := range steps {
		fmt.Fprintf(cmd.OutOrStdout(), "\n== ferry %s\n", strings.Join(args, " "))
		if err := o.sub(cmd, args...); err != nil {
			return err
		}
	}
	return nil
}

// sub runs another ferry command exactly as a user would, sharing output.
func (o *demoOptions) sub(cmd *cobra.Command, args ...string) error {
	root := NewRootCmd()
	root.SetArgs(args)
	root.SetOut(cmd.OutOrStdout())
	root.SetErr(cmd.ErrOrStderr())
	return root.ExecuteContext(cmd.Context())
}
