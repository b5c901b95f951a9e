package tempfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileRanger is ranger for a file on Linux: sync_file_range to start and to
// wait for writeback, then fadvise(DONTNEED), which drops clean pages.
type fileRanger struct{ f *os.File }

func newRanger(f *os.File) ranger { return fileRanger{f} }

func (r fileRanger) start(off, n int64) error {
	return r.check("starting writeback of", unix.SyncFileRange(int(r.f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE))
}

func (r fileRanger) settle(off, n int64) error {
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := r.check("writing back", unix.SyncFileRange(int(r.f.Fd()), off, n, wait)); err != nil {
		return err
	}
	// Advice only: a failure to drop pages costs memory, not data.
	_ = unix.Fadvise(int(r.f.Fd()), off, n, unix.FADV_DONTNEED)
	return nil
}

func (r fileRanger) flush() error {
	return r.check("flushing", unix.Fdatasync(int(r.f.Fd())))
}

// check maps "this file cannot do that" (some FUSE and network file systems,
// seccomp filters) to errUnsupported; an I/O error is the write's error.
func (r fileRanger) check(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ESPIPE), errors.Is(err, unix.EPERM):
		return errUnsupported
	}
	return fmt.Errorf("%s %s: %w", what, r.f.Name(), err)
}
