package bundle

import (
	"context"
	"fmt"
	"io"

	"github.com/rancher/ferry/reorder/tempfile"
)

// WriteFileAtomic creates path with the bytes write produces. The data goes
// to a temp file beside path, is fsynced and renamed over path only when
// write succeeds, so readers never see a partial bundle and a failure or
// cancellation leaves path as it was. Temp files that earlier writers of
// path left behind when they were killed are removed first (see
// tempfile.Sweep).
func WriteFileAtomic(ctx context.Context, path string, write func(ctx context.Context, w io.Writer) error) error {
	if write == nil {
		return fmt.Errorf("%w: WriteFileAtomic needs a write function", ErrNilArgument)
	}
	return tempfile.WriteAtomic(ctx, path, func(w io.Writer) error { return write(ctx, w) })
}
