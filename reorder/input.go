package reorder

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// input is the tar stream File reorders and how to read it again.
type input struct {
	r           io.Reader
	compression string
	reopen      func() (io.ReadCloser, error)
	closers     []io.Closer
}

// openInput opens path ("-" for stdin). A plain tar file is handed over as
// the *os.File itself, so it can be indexed and copied by offset; a
// compressed regular file is decompressed, and reread rather than spilled
// when the codec says that is faster.
func openInput(path string, stdin io.Reader, codec Codec) (*input, error) {
	if path == "-" {
		return openStdin(stdin, codec)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	in := &input{closers: []io.Closer{f}}
	c, err := codec.Detect(bufio.NewReaderSize(f, 16))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	in.compression = c
	if c == None {
		in.r = f
		return in, nil
	}
	rc, err := codec.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	in.r = rc
	in.closers = append(in.closers, rc)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && codec.Reread(c) {
		in.reopen = func() (io.ReadCloser, error) { return reopen(path, codec) }
	}
	return in, nil
}

func openStdin(stdin io.Reader, codec Codec) (*input, error) {
	if stdin == nil {
		stdin = os.Stdin
	}
	br := bufio.NewReaderSize(stdin, 64<<10)
	c, err := codec.Detect(br)
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	rc, err := codec.Decompress(br)
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	return &input{r: rc, compression: c, closers: []io.Closer{rc}}, nil
}

// reopen opens and decompresses path again, for the second pass.
func reopen(path string, codec Codec) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rc, err := codec.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &fileStream{ReadCloser: rc, file: f}, nil
}

type fileStream struct {
	io.ReadCloser
	file *os.File
}

func (s *fileStream) Close() error {
	return errors.Join(s.ReadCloser.Close(), s.file.Close())
}

// Close closes what it holds in reverse order of opening, like defers: the
// decompressor, then the file below it.
func (in *input) Close() error {
	var errs []error
	for i := len(in.closers) - 1; i >= 0; i-- {
		errs = append(errs, in.closers[i].Close())
	}
	return errors.Join(errs...)
}
