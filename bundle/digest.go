package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// VerifyingReader passes r through and, at EOF, fails with
// ErrSizeMismatch or ErrDigestMismatch unless the bytes match d.
func VerifyingReader(r io.ReadCloser, d v1.Descriptor) io.ReadCloser {
	return &verifyingReader{r: r, d: d, h: sha256.New()}
}

type verifyingReader struct {
	r io.ReadCloser
	d v1.Descriptor
	h hash.Hash
	n int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if v.n != v.d.Size {
			return n, fmt.Errorf("%w: %s: %d bytes, descriptor says %d", ErrSizeMismatch, v.d.Digest, v.n, v.d.Size)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); v.d.Digest.Algorithm != "sha256" || got != v.d.Digest.Hex {
			return n, fmt.Errorf("%w: blob %s hashes to sha256:%s", ErrDigestMismatch, v.d.Digest, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }
