package inflate

import (
	"context"
	"io"
)

// OpenAt hashes a blob of size bytes on a worker of its own, which sends
// the first chunk, (*buf)[:n] from GetChunk, and then reads rest by offset.
// It waits for a free slot, which the blob holds until its last byte is
// hashed and inflated, and closes rest when done: a failure to close, such
// as a damaged last frame, makes the blob incomplete. What is learnt goes
// to res (see Open).
func (p *Pool) OpenAt(ctx context.Context, res *Result, size int64, buf *[]byte, n int, rest io.ReadCloser) {
	p.acquire()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// No spilling: this worker only holds up its own layer.
		s := p.stream(res, size, Sniff((*buf)[:min(n, SniffLen)]), false)
		err := p.feed(ctx, s, buf, n, rest)
		if cerr := rest.Close(); err == nil {
			err = cerr
		}
		s.End(err)
		if s.q == nil {
			p.release() // else the inflater frees the slot when done
		}
	}()
}

// feed sends buf[:n], then all of rest, chunk by chunk, to s.
func (p *Pool) feed(ctx context.Context, s *Stream, buf *[]byte, n int, rest io.Reader) error {
	left := s.size - int64(n)
	for {
		s.Send(buf, n)
		if left == 0 {
			return nil
		}
		if err := p.halted(ctx); err != nil {
			return err
		}
		buf = GetChunk()
		var err error
		n, err = io.ReadFull(rest, (*buf)[:min(int64(ChunkSize), left)])
		if err != nil {
			PutChunk(buf)
			return OrUnexpectedEOF(err)
		}
		left -= int64(n)
	}
}
