//go:build !linux

package tempfile

import "os"

// newRanger is nil where there is no range writeback: the final fsync does
// it all.
func newRanger(*os.File) ranger { return nil }
