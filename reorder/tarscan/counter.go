package tarscan

import "io"

// offsetter reports how many bytes of the stream tar.Reader has consumed.
type offsetter interface {
	offset() int64
}

// counter counts what tar.Reader reads. It has no Seek method, so
// tar.Reader reads (and the layers below see) every byte.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *counter) offset() int64 { return c.n }

// seekCounter lets tar.Reader skip entry data with Seek.
type seekCounter struct {
	counter
	s io.Seeker
}

func (c *seekCounter) Seek(off int64, whence int) (int64, error) {
	n, err := c.s.Seek(off, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

// atCounter counts from base, where a section of an io.ReaderAt starts.
type atCounter struct {
	counter
	base int64
}

func (c *atCounter) offset() int64 { return c.base + c.n }
