package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/rancher/ferry/registry/registrytest"
)

// newSampleCmd is a hidden developer command: end-to-end scripts use it to
// put the sample set, the one tests and the demo use, into a real registry.
func newSampleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "sample",
		Short:  "Work with ferry's deterministic sample image set (for tests)",
		Hidden: true,
	}
	cmd.AddCommand(newSamplePushCmd())
	return cmd
}

type samplePushOptions struct {
	host string
	size int64
	// distributable: Windows base layers as ordinary layers, not foreign.
	distributable bool
}

func newSamplePushCmd() *cobra.Command {
	o := &samplePushOptions{}
	cmd := &cobra.Command{
		Use:   "push --registry HOST",
		Short: "Push the sample set, foreign layers included, and list what was pushed",
		Args:  cobra.NoArgs,
		RunE:  o.run,
	}
	cmd.Flags().StringVar(&o.host, "registry", "", "registry host[:port] to push to (required)")
	cmd.Flags().Int64Var(&o.size, "size", 1<<20, "bytes of image data per Windows version")
	cmd.Flags().BoolVar(&o.distributable, "distributable-base", false, "Windows base layers as ordinary layers instead of foreign ones")
	_ = cmd.MarkFlagRequired("registry")
	return cmd
}

func (o *samplePushOptions) run(cmd *cobra.Command, _ []string) error {
	sample, err := registrytest.NewSample(registrytest.SampleOptions{BytesPerVersion: o.size, DistributableBase: o.distributable})
	if err != nil {
		return err
	}
	client, err := registryClient(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if err := sample.Push(cmd.Context(), client, o.host); err != nil {
		return err
	}
	refs := append([]string(nil), sample.Order...)
	sort.Strings(refs)
	for _, ref := range refs {
		fmt.Fprintf(cmd.OutOrStdout(), "%s/%s\n", o.host, ref)
	}
	return nil
}
