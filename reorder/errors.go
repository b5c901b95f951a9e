package reorder

import (
	"errors"

	"github.com/rancher/ferry/reorder/tarscan"
)

// Errors returned by Reorder and File, wrapped with the entry they concern;
// test them with errors.Is. The archive errors are tarscan's, so a caller
// can test for either name: reorder refuses exactly what every other ferry
// reader refuses.
var (
	// ErrTruncated means the stream ended inside an entry or before the
	// end-of-archive marker: a partial download or copy.
	ErrTruncated = tarscan.ErrTruncated
	// ErrMalformed means the stream is not a valid tar archive.
	ErrMalformed = tarscan.ErrMalformed
	// ErrUnsafePath means an entry name is empty, absolute, has a drive
	// letter, climbs out of the archive with "..", or is too long.
	ErrUnsafePath = tarscan.ErrUnsafePath
	// ErrUnsafeLink means a symlink or hard link points outside the archive,
	// or a hard link names an entry that does not precede it.
	ErrUnsafeLink = tarscan.ErrUnsafeLink
	// ErrDuplicate means two entries share a name: extracting the archive
	// would silently keep only one, and reordering could change which.
	ErrDuplicate = tarscan.ErrDuplicate
	// ErrUnsupportedType means an entry is neither a regular file, a
	// directory nor a link.
	ErrUnsupportedType = tarscan.ErrUnsupportedType
	// ErrLimit means the archive exceeds one of the bounds that keep memory
	// use small (entry count, header size, metadata bytes).
	ErrLimit = tarscan.ErrLimit
	// ErrInvalidArgument means an option value cannot work, or a required
	// argument (the source, the destination, the codec) is nil.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrChanged means a second read of the input did not match the first.
	ErrChanged = errors.New("input changed while reordering")
)
