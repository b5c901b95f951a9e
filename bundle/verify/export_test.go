package bundle

import (
	"context"
	"io"
)

// VerifySpilled is Verify, also returning how many layer bytes went to
// spill files in all, and at most at once.
func VerifySpilled(ctx context.Context, r io.Reader, opts ...VerifyOption) (*Report, int64, int64, error) {
	v, err := verify(ctx, r, opts)
	return v.rep, v.spilled.total, v.spilled.peak, err
}

// KeepSpillNames leaves spill files in their directory until they are
// removed, as on Windows, so that a test can see they are; the result
// restores the default.
func KeepSpillNames() func() {
	unlinkSpill = false
	return func() { unlinkSpill = true }
}
