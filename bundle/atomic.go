package bundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rancher/ferry/reorder/tempfile"
)

// WriteFileAtomic creates path with the bytes write produces. The data goes
// to a temp file beside path, is fsynced and renamed over path only when
// write succeeds, so readers never see a partial bundle and a failure or
// cancellation leaves path as it was. Temp files that earlier writers of
// path left behind when they were killed are removed first (see
// tempfile.Sweep).
func WriteFileAtomic(ctx context.Context, path string, write func(ctx context.Context, w io.Writer) error) (err error) {
	if write == nil {
		return fmt.Errorf("%w: WriteFileAtomic needs a write function", ErrNilArgument)
	}
	dir := filepath.Dir(path)
	if fi, statErr := os.Stat(path); statErr == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory: give a file name", path)
	}
	pattern := tempfile.Beside(path)
	_, _ = tempfile.Sweep(dir, pattern)
	tmp, err := tempfile.Create(dir, pattern)
	if err != nil {
		return fmt.Errorf("creating output in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(ctx, tmp); err != nil {
		return err
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes the rename durable. Some filesystems refuse to fsync a
// directory; a finished bundle is not worth failing for that.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	_ = d.Sync()
	return d.Close()
}
