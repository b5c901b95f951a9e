package main

import (
	"github.com/spf13/cobra"
)

// NewRootCmd builds a fresh command tree with no package-level state, so
// tests can run commands side by side and capture their output.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Build, check and load airgap image bundles",
		Long:          "ferry pulls container images (including Windows images by version) into metadata-first bundles, and lists, verifies, reorders and publishes them.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readBuildInfo().String(),
	}
	root.SetVersionTemplate("ferry {{.Version}}\n")
	registerGlobalFlags(root.PersistentFlags())
	root.AddCommand(
		newBundleCmd(),
		newListCmd(),
		newDemoCmd(),
		newReorderCmd(),
		newManifestCmd(),
		newSampleCmd(),
		newServeCmd(),
		newVerifyCmd(),
		newPushCmd(),
		newVersionCmd(),
	)
	return root
}
