package inflate

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// OpenAt hashes a blob of size bytes on a worker of its own, whose first
// bytes are (*buf)[:n], from GetChunk, and the rest of which it reads from
// rest, by offset. It waits for a free slot, which the blob holds until it
// is done, and closes rest then: a failure to close, such as a damaged last
// frame, makes the blob incomplete. What is learnt goes to res (see Open).
//
// The worker hashes, inflates and hashes again in one goroutine, with no
// queue between: its layer waits for nothing but its own reads, so handing
// chunks between goroutines would only add copies and wake-ups, and the
// layers read at once keep the cores busy.
func (p *Pool) OpenAt(ctx context.Context, res *Result, size int64, buf *[]byte, n int, rest io.ReadCloser) {
	p.acquire()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.release()
		err := p.hashAt(ctx, res, size, buf, n, rest)
		if cerr := rest.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			res.Blob, res.Hashed = Blob{}, false
		}
	}()
}

// hashAt reads the blob through a blobReader, inflating it on the way when
// it is compressed, then reads what the inflater left, so that the digest
// covers every byte whatever the inflater made of them.
func (p *Pool) hashAt(ctx context.Context, res *Result, size int64, buf *[]byte, n int, rest io.Reader) error {
	defer PutChunk(buf)
	kind := Sniff((*buf)[:min(n, SniffLen)])
	b := &blobReader{ctx: ctx, p: p, head: (*buf)[:n], rest: rest, left: size - int64(n), digest: sha256.New()}
	if p.inflates(kind) {
		in, done := inflateInput(b)
		id, expanded, err := layerDiffID(in, kind, max(expansionFloor, size*max(p.ratio, 1)), false)
		done()
		res.Diff = Diff{ID: id, Err: err, Expanded: expanded}
	}
	scratch := GetChunk()
	defer PutChunk(scratch)
	for {
		if _, err := b.Read(*scratch); err != nil {
			break
		}
	}
	if b.err != nil {
		return b.err
	}
	res.Blob = Blob{Digest: sha256Of(b.digest), Kind: kind}
	res.Hashed = true
	if kind == KindTar {
		res.Diff.ID = res.Blob.Digest
	}
	return nil
}

// blobReader yields a blob's head, then the rest of it, hashing every byte
// for its digest. It stops at the blob's end, or when the pool is stopped,
// and keeps the first error of its own reads apart from the inflater's.
type blobReader struct {
	ctx    context.Context
	p      *Pool
	head   []byte
	rest   io.Reader
	left   int64
	digest hash.Hash
	err    error
}

func (b *blobReader) Read(q []byte) (int, error) {
	if len(b.head) > 0 {
		k := copy(q, b.head)
		b.digest.Write(q[:k])
		b.head = b.head[k:]
		return k, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if err := b.p.halted(b.ctx); err != nil {
		b.err = err
		return 0, err
	}
	k, err := b.rest.Read(q[:min(int64(len(q)), b.left)])
	b.digest.Write(q[:k])
	b.left -= int64(k)
	switch {
	case b.left == 0:
		return k, nil
	case errors.Is(err, io.EOF) || (err == nil && k == 0):
		b.err = io.ErrUnexpectedEOF
	case err != nil:
		b.err = err
	}
	return k, b.err
}
