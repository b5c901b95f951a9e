package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// bigInput is the size from which verify and reorder show a bar on a
// terminal: below it they finish before a bar would tell anything.
const bigInput = 64 << 20

// openInput opens a path argument, or stdin for "-"; size is -1 when
// unknown. A file is returned as *os.File, so readers that can read it by
// offset still do.
func openInput(cmd *cobra.Command, path string) (io.Reader, int64, func(), error) {
	if path == "-" {
		return cmd.InOrStdin(), -1, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// progress is a bar over the bytes verify reads, on a terminal and for a
// big (or unknown-size) input only.
func (o *verifyOptions) progress(cmd *cobra.Command, size int64) *byteProgress {
	out := cmd.ErrOrStderr()
	if o.quiet || !isTerminal(out) || (size >= 0 && size < bigInput) {
		out = io.Discard
	}
	p := newByteProgress(out, "verifying")
	if size > 0 {
		p.SetTotal(size)
	}
	return p
}

// reader counts what r hands out as progress. A file stays an
// io.ReaderAt and io.Seeker, since verify reads a plain tar file by offset.
func (p *byteProgress) reader(r io.Reader) io.Reader {
	if p.out == io.Discard {
		return r
	}
	if f, ok := r.(*os.File); ok {
		return &countingFile{File: f, p: p}
	}
	return io.TeeReader(r, p)
}

type countingFile struct {
	*os.File
	p *byteProgress
}

func (c *countingFile) Read(b []byte) (int, error) {
	n, err := c.File.Read(b)
	_, _ = c.p.Write(b[:n])
	return n, err
}

func (c *countingFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(b, off)
	_, _ = c.p.Write(b[:n])
	return n, err
}
