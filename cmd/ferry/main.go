// Command ferry builds, checks and loads airgap image bundles.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run returns the process exit code: 0 success, 1 problems found (verify),
// 2 usage or I/O errors, as documented in the README.
func run(ctx context.Context, args []string) int {
	return runWith(ctx, NewRootCmd(), args)
}

func runWith(ctx context.Context, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var coded *exitError
	if errors.As(err, &coded) {
		if coded.msg != "" {
			fmt.Fprintln(root.ErrOrStderr(), "ferry:", coded.msg)
		}
		return coded.code
	}
	fmt.Fprintln(root.ErrOrStderr(), "ferry:", err)
	if ctx.Err() != nil {
		return 130
	}
	return 2
}

// exitError carries a specific exit code, such as 1 for "verified, problems found".
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
