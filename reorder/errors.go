package reorder

import "errors"

// Errors returned by Reorder, wrapped with the entry they concern; test them
// with errors.Is.
var (
	// ErrTruncated means the stream ended inside an entry or before the
	// end-of-archive marker: a partial download or copy.
	ErrTruncated = errors.New("truncated archive")
	// ErrMalformed means the stream is not a valid tar archive.
	ErrMalformed = errors.New("malformed tar archive")
	// ErrUnsafePath means an entry name is absolute or climbs out of the
	// archive with "..".
	ErrUnsafePath = errors.New("unsafe path")
	// ErrUnsafeLink means a symlink or hard link points outside the archive,
	// or a hard link names an entry that does not precede it.
	ErrUnsafeLink = errors.New("link points outside the archive")
	// ErrDuplicate means two entries share a name: extracting the archive
	// would silently keep only one, and reordering could change which.
	ErrDuplicate = errors.New("duplicate entry")
	// ErrUnsupportedType means an entry is neither a regular file, a
	// directory nor a link: device nodes, FIFOs, sparse files, global PAX
	// headers have no place in an image archive.
	ErrUnsupportedType = errors.New("unsupported entry type")
	// ErrLimit means the archive exceeds one of the bounds that keep memory
	// use small (entry count, header size, buffered metadata).
	ErrLimit = errors.New("archive exceeds a limit")
	// ErrInvalidArgument means an option value cannot work, or a required
	// argument (the source, the destination) is nil.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrChanged means a second read of the input did not match the first.
	ErrChanged = errors.New("input changed while reordering")
)
