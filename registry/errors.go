package registry

import "errors"

var (
	// ErrInvalidArgument is returned for an option value that cannot work
	// or a required argument (a cache, a write function) that is nil.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrBadReference is returned for an image reference that does not parse.
	ErrBadReference = errors.New("invalid image reference")
	// ErrNoMatchingPlatform is returned when an image has no manifest for
	// the requested platform or Windows version.
	ErrNoMatchingPlatform = errors.New("no matching platform")
	// ErrUnsupportedManifest is returned for media types ferry cannot bundle,
	// such as Docker schema 1.
	ErrUnsupportedManifest = errors.New("unsupported manifest")
)
