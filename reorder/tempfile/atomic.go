package tempfile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteAtomic creates path with the bytes write produces. They go to a
// temp file beside path (named by Create, after a Sweep of killed writers'
// files), which is fsynced and renamed over path only when write succeeds
// and ctx is not done, so readers never see a partial file and a failure
// leaves path as it was. The file is written back to disk as it grows, in
// ranges, those ranges are dropped from the page cache and, every so often,
// made durable (fdatasync) in the background, so that the fsync at the end
// neither flushes a whole multi-GiB file at once nor waits for the disk's
// own cache to take it, and the output does not crowd other data out of
// memory.
func WriteAtomic(ctx context.Context, path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if fi, statErr := os.Stat(path); statErr == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory: give a file name", path)
	}
	pattern := Beside(path)
	_, _ = Sweep(dir, pattern)
	tmp, err := Create(dir, pattern)
	if err != nil {
		return fmt.Errorf("creating output in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = writeBack(tmp, write); err != nil {
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
	syncDir(dir)
	return nil
}

// writeBack runs write on f, through writeback where the system has it.
func writeBack(f *os.File, write func(w io.Writer) error) error {
	r := newRanger(f)
	if r == nil {
		return write(f)
	}
	wb := newWriteback(f, r)
	err := write(wb)
	if cerr := wb.close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the rename durable. Some filesystems refuse to fsync a
// directory; a finished file is not worth failing for that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
