package verify

import (
	"context"
	"io"

	"github.com/rancher/ferry/bundle/verify/internal/inflate"
)

// ArchiveSpilled is Archive, also returning how many layer bytes went to
// spill files in all, and at most at once.
func ArchiveSpilled(ctx context.Context, r io.Reader, opts ...Option) (*Report, int64, int64, error) {
	v, err := run(ctx, r, opts)
	return v.rep, v.spilled.Total, v.spilled.Peak, err
}

// ArchiveInflated is Archive, also returning how many bytes were
// decompressed reading the archive by offset (0 when it was streamed).
func ArchiveInflated(ctx context.Context, r io.Reader, opts ...Option) (*Report, int64, error) {
	v, err := run(ctx, r, opts)
	if v == nil || v.seek == nil {
		return nil, 0, err
	}
	return v.rep, v.seek.Inflated(), err
}

// KeepSpillNames leaves spill files in their directory until they are
// removed, as on Windows, so that a test can see they are; the result
// restores the default.
func KeepSpillNames() func() {
	inflate.UnlinkSpill = false
	return func() { inflate.UnlinkSpill = true }
}
