package bundle

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrDecompressionBomb is a layer that expands past the verification bound.
var ErrDecompressionBomb = errors.New("layer expands too much")

// Chunks hand a blob's bytes from the tar reader to its hashing worker. The
// queue lets the reader run a few MiB ahead, so a small layer is handed off
// whole and the reader moves on while the worker gunzips it; a big layer
// never sits in memory. Memory is bounded by jobs × queueDepth × blobChunkSize.
const (
	blobChunkSize = 256 << 10
	queueDepth    = 8
	// expansionFloor lets small layers expand freely: a few MB of gzipped
	// zeros (a preallocated file) is a legitimate layer.
	expansionFloor = 256 << 20
	sniffLen       = 512
)

var blobChunkPool = sync.Pool{New: func() any { b := make([]byte, blobChunkSize); return &b }}

func getBlobChunk() *[]byte  { return blobChunkPool.Get().(*[]byte) }
func putBlobChunk(b *[]byte) { blobChunkPool.Put(b) }

// blobKind is how a blob's bytes are encoded, as far as diff_ids go.
type blobKind string

const (
	kindGzip    blobKind = "gzip"
	kindZstd    blobKind = "zstd"
	kindTar     blobKind = "tar"
	kindUnknown blobKind = "unknown"
)

// blobHash is what hashing a blob tells: its digest, and for layers the
// digest of the uncompressed tar (the diff_id).
type blobHash struct {
	digest   v1.Hash
	kind     blobKind
	diffID   v1.Hash
	diffErr  error
	expanded int64
}

// sniffBlob tells gzip and zstd by magic, a tar by its ustar magic or an
// all-zero first block (the empty layer).
func sniffBlob(head []byte) blobKind {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return kindGzip
	case bytes.HasPrefix(head, zstdMagic):
		return kindZstd
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return kindTar
	case len(head) >= sniffLen && bytes.Count(head[:sniffLen], []byte{0}) == sniffLen:
		return kindTar
	}
	return kindUnknown
}

func sha256Of(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// hashBlob reads r to the end and returns its digest and, for compressed
// layers, the diff_id. limit bounds the decompressed bytes.
func hashBlob(r io.Reader, limit int64) (blobHash, error) {
	digest := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, digest), 64<<10)
	head, _ := br.Peek(sniffLen)
	res := blobHash{kind: sniffBlob(head)}
	if res.kind == kindGzip || res.kind == kindZstd {
		res.diffID, res.expanded, res.diffErr = layerDiffID(br, res.kind, limit)
	}
	// Whatever the decompressor left (trailing bytes, or all of it after an
	// error) still belongs to the digest.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return res, err
	}
	res.digest = sha256Of(digest)
	if res.kind == kindTar {
		res.diffID = res.digest
	}
	return res, nil
}

func layerDiffID(r io.Reader, kind blobKind, limit int64) (v1.Hash, int64, error) {
	var zr io.Reader
	switch kind {
	case kindGzip:
		gr, err := gzip.NewReader(r)
		if err != nil {
			return v1.Hash{}, 0, fmt.Errorf("gzip: %w", err)
		}
		defer gr.Close()
		zr = gr
	case kindZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderMaxMemory(MaxZstdWindow))
		if err != nil {
			return v1.Hash{}, 0, fmt.Errorf("zstd: %w", err)
		}
		defer d.Close()
		zr = d
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(zr, limit+1))
	switch {
	case err != nil && strings.HasPrefix(err.Error(), string(kind)):
		return v1.Hash{}, n, fmt.Errorf("%w after %d bytes", err, n)
	case err != nil:
		return v1.Hash{}, n, fmt.Errorf("%s: %w after %d bytes", kind, err, n)
	case n > limit:
		return v1.Hash{}, n, fmt.Errorf("%w: over %d bytes decompressed, the bound for its size (see --max-expansion)", ErrDecompressionBomb, limit)
	}
	return sha256Of(h), n, nil
}

// hashPool runs hashBlob on at most jobs blobs at once.
type hashPool struct {
	sem   chan struct{}
	wg    sync.WaitGroup
	ratio int64
}

func newHashPool(jobs int, ratio int64) *hashPool {
	return &hashPool{sem: make(chan struct{}, jobs), ratio: ratio}
}

// blobStream feeds one blob's bytes to its worker.
type blobStream struct {
	ch chan blobChunk
}

type blobChunk struct {
	buf *[]byte
	n   int
	err error
}

// start hands e to a worker, waiting for a free one. The worker writes its
// result into e; read it only after wait.
func (p *hashPool) start(e *vEntry) *blobStream {
	p.sem <- struct{}{}
	s := &blobStream{ch: make(chan blobChunk, queueDepth)}
	limit := max(expansionFloor, e.size*max(p.ratio, 1))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		cr := &blobChunkReader{ch: s.ch}
		res, err := hashBlob(cr, limit)
		cr.drain()
		if err == nil {
			e.blob, e.hashed = res, true
		}
	}()
	return s
}

// send passes buf (owned by the worker from now on) to the worker.
func (s *blobStream) send(buf *[]byte, n int) { s.ch <- blobChunk{buf: buf, n: n} }

// end finishes the blob; a non-nil err tells the worker it is incomplete.
func (s *blobStream) end(err error) {
	if err != nil {
		s.ch <- blobChunk{err: err}
	}
	close(s.ch)
}

func (p *hashPool) wait() { p.wg.Wait() }

// blobChunkReader is the worker's side of a blobStream.
type blobChunkReader struct {
	ch  chan blobChunk
	cur blobChunk
	off int
	err error
}

func (c *blobChunkReader) Read(p []byte) (int, error) {
	for c.cur.buf == nil || c.off == c.cur.n {
		if c.err != nil {
			return 0, c.err
		}
		c.release()
		next, ok := <-c.ch
		switch {
		case !ok:
			c.err = io.EOF
		case next.err != nil:
			c.err = next.err
		default:
			c.cur, c.off = next, 0
		}
	}
	n := copy(p, (*c.cur.buf)[c.off:c.cur.n])
	c.off += n
	return n, nil
}

func (c *blobChunkReader) release() {
	if c.cur.buf != nil {
		putBlobChunk(c.cur.buf)
		c.cur = blobChunk{}
	}
}

// drain returns every remaining buffer, so the sender never blocks on a
// worker that stopped early.
func (c *blobChunkReader) drain() {
	c.release()
	for next := range c.ch {
		if next.buf != nil {
			putBlobChunk(next.buf)
		}
	}
}
