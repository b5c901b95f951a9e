package inflate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrDecompressionBomb is a layer that expands past the bound for its size.
var ErrDecompressionBomb = errors.New("layer expands too much")

// A layer's bytes flow through a three-stage pipeline: the tar reader
// hashes them (the digest) and queues them to an inflater, which queues its
// output to a hasher (the diff_id). Several layers are in flight at once:
// a layer whose inflater falls behind spills to a temp file rather than
// hold the single tar stream up (see layerQueue). An archive read by
// offset needs no pipeline: each layer has a worker of its own (see
// OpenAt). Memory is bounded by jobs × (queueDepth + outDepth + 4) ×
// ChunkSize; no layer is ever held whole in memory.
const (
	// ChunkSize is the size of the chunks GetChunk returns.
	ChunkSize  = 256 << 10
	queueDepth = 8
	outDepth   = 2
	// expansionFloor lets small layers expand freely: a few MB of gzipped
	// zeros (a preallocated file) is a legitimate layer.
	expansionFloor = 256 << 20
	// SniffLen is how many first bytes of a blob Sniff looks at.
	SniffLen = 512
)

// Kind is how a blob's bytes are encoded, as far as diff_ids go.
type Kind string

const (
	KindGzip    Kind = "gzip"
	KindZstd    Kind = "zstd"
	KindTar     Kind = "tar"
	KindUnknown Kind = "unknown"
)

// Blob is a blob's digest as stored and its encoding, written by the tar
// reader's side.
type Blob struct {
	Digest v1.Hash
	Kind   Kind
}

// Diff is the digest of the uncompressed layer, written by the inflater for
// compressed blobs and by the reader for plain tars.
type Diff struct {
	ID       v1.Hash
	Err      error
	Expanded int64
}

// Result is what the pool learns about one blob. Workers write it: read it
// only after Pool.Wait.
type Result struct {
	Blob   Blob
	Diff   Diff
	Hashed bool // Blob is set: the blob was read to its end
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Sniff tells gzip and zstd by magic, a tar by its ustar magic or an
// all-zero first block (the empty layer).
func Sniff(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return KindGzip
	case bytes.HasPrefix(head, zstdMagic):
		return KindZstd
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return KindTar
	case len(head) >= SniffLen && bytes.Count(head[:SniffLen], []byte{0}) == SniffLen:
		return KindTar
	}
	return KindUnknown
}

// SHA256 returns the digest of b.
func SHA256(b []byte) v1.Hash {
	h := sha256.New()
	h.Write(b)
	return sha256Of(h)
}

func sha256Of(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// layerDiffID inflates r and hashes what comes out: on a goroutine of its
// own when piped, so that a layer streamed through a queue uses two cores.
func layerDiffID(r io.Reader, kind Kind, limit int64, piped bool) (v1.Hash, int64, error) {
	zr, done, err := inflater(r, kind)
	if err != nil {
		return v1.Hash{}, 0, fmt.Errorf("%s: %w", kind, err)
	}
	defer done()
	var n int64
	var sum v1.Hash
	if piped {
		h := newPipedHash()
		n, err = io.Copy(h, io.LimitReader(zr, limit+1))
		sum = h.Sum()
	} else {
		buf := GetChunk()
		h := sha256.New()
		n, err = io.CopyBuffer(h, io.LimitReader(zr, limit+1), *buf)
		PutChunk(buf)
		sum = sha256Of(h)
	}
	switch {
	case err != nil && strings.HasPrefix(err.Error(), string(kind)):
		return v1.Hash{}, n, fmt.Errorf("%w after %d bytes", err, n)
	case err != nil:
		return v1.Hash{}, n, fmt.Errorf("%s: %w after %d bytes", kind, err, n)
	case n > limit:
		return v1.Hash{}, n, fmt.Errorf("%w: over %d bytes decompressed, the bound for its size (see --max-expansion)", ErrDecompressionBomb, limit)
	}
	return sum, n, nil
}

// blobChunk is one filled chunk from the chunk pool.
type blobChunk struct {
	buf *[]byte
	n   int
}

// pipedHash is a sha256 computed on its own goroutine, so that inflating
// and hashing a layer use two cores.
type pipedHash struct {
	ch   chan blobChunk
	cur  *[]byte
	n    int
	done chan v1.Hash
}

func newPipedHash() *pipedHash {
	p := &pipedHash{ch: make(chan blobChunk, outDepth), done: make(chan v1.Hash, 1)}
	go func() {
		h := sha256.New()
		for c := range p.ch {
			h.Write((*c.buf)[:c.n])
			PutChunk(c.buf)
		}
		p.done <- sha256Of(h)
	}()
	return p
}

func (p *pipedHash) Write(b []byte) (int, error) {
	written := len(b)
	for len(b) > 0 {
		if p.cur == nil {
			p.cur, p.n = GetChunk(), 0
		}
		k := copy((*p.cur)[p.n:], b)
		p.n += k
		b = b[k:]
		if p.n == len(*p.cur) {
			p.flush()
		}
	}
	return written, nil
}

// ReadFrom reads r to its end straight into chunks for the hasher, which
// io.Copy prefers to Write: it saves copying every inflated byte through
// io.Copy's buffer.
func (p *pipedHash) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if p.cur == nil {
			p.cur, p.n = GetChunk(), 0
		}
		k, err := r.Read((*p.cur)[p.n:])
		p.n += k
		total += int64(k)
		if p.n == len(*p.cur) {
			p.flush()
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (p *pipedHash) flush() {
	if p.cur != nil {
		p.ch <- blobChunk{buf: p.cur, n: p.n}
		p.cur = nil
	}
}

// Sum ends the stream and returns the digest of everything written.
func (p *pipedHash) Sum() v1.Hash {
	p.flush()
	close(p.ch)
	return <-p.done
}
