package reorder

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rancher/ferry/reorder/tempfile"
)

// writeAtomic creates path with the bytes write produces: they go to a temp
// file beside path, which is fsynced and renamed over path only when write
// succeeds, so a reader never sees a partial archive and a failure leaves
// path as it was. It mirrors bundle.WriteFileAtomic, which reorder cannot
// import, down to sweeping the temp files of killed writers first.
func writeAtomic(path string, write func(w io.Writer) error) (err error) {
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
	if err = write(tmp); err != nil {
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
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Some filesystems refuse to fsync a
// directory; a finished archive is not worth failing for that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
