package reorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/rancher/ferry/reorder/tempfile"
)

// None is the compression name of a plain tar stream, for every Codec.
const None = "none"

// Codec is what File needs to know about compression. Compressions are
// named by strings the Codec chooses, except None. Package bundle
// implements it for zstd, gzip and plain tar (bundle.ReorderCodec).
type Codec interface {
	// Detect names the compression of the stream whose first bytes br
	// holds, without consuming them.
	Detect(br *bufio.Reader) (string, error)
	// FromPath names the compression a file name implies, or returns an
	// error when the name implies none.
	FromPath(path string) (string, error)
	// Decompress returns the tar stream inside r, detecting how r is
	// compressed.
	Decompress(r io.Reader) (io.ReadCloser, error)
	// Compress returns a writer that compresses into w with the named
	// compression. EndFrame ends a frame (a no-op without frames); Close
	// finishes the stream and does not close w.
	Compress(w io.Writer, compression string) (Compressor, error)
	// Reread reports whether decompressing a file of this compression twice
	// is faster than spilling its tar stream to disk and reading that back.
	Reread(compression string) bool
}

// Compressor is a compressing writer whose frames can be ended early.
type Compressor interface {
	io.WriteCloser
	FrameEnder
}

// Aborter is implemented by compressors that work in the background, such
// as bundle.Compressor: File calls Abort instead of Close when it gives up
// on the output, so that the work stops and its resources are released.
type Aborter interface {
	Abort()
}

// WithCompression sets File's output compression, by its Codec's name. When
// out's name implies a compression too, the two must agree: loaders such as
// k3s and rke2 pick their decompressor by extension.
func WithCompression(name string) Option {
	return func(o *options) error { o.compression = name; return nil }
}

// WithStdin sets what File reads for the input "-" (default os.Stdin).
func WithStdin(r io.Reader) Option {
	return func(o *options) error {
		if r == nil {
			return fmt.Errorf("%w: nil stdin", ErrInvalidArgument)
		}
		o.stdin = r
		return nil
	}
}

// WithProgress copies every byte File writes to its output to p as it is
// written, for a progress display; an error from p fails File.
func WithProgress(p io.Writer) Option {
	return func(o *options) error { o.progress = p; return nil }
}

// File reorders the archive at path in ("-" for stdin) into the file out,
// metadata first as ranked by WithRank. An empty out means in place: in is
// replaced and keeps its compression. Otherwise the output's compression is
// WithCompression's, else the one out's name implies.
//
// The input's compression is detected from its content, not its name. A
// plain tar file is indexed and copied by offset; a compressed file is
// decompressed twice where codec.Reread says that beats spilling, and
// other streams (stdin included) are spilled next to out. The output is
// written to a temp file beside out, fsynced and renamed over it, so on any
// error out is as it was and nothing is left behind.
func File(ctx context.Context, in, out string, codec Codec, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if codec == nil {
		return nil, fmt.Errorf("%w: File needs a Codec", ErrInvalidArgument)
	}
	inPlace := out == ""
	if inPlace {
		if in == "-" {
			return nil, errors.New("reordering stdin needs an output file")
		}
		out = in
	}
	src, err := openInput(in, o.stdin, codec)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	comp, err := outputCompression(codec, o.compression, out, inPlace, src.compression)
	if err != nil {
		return nil, err
	}
	if src.reopen != nil {
		o.reopen = src.reopen
	}
	if o.spillDir == "" {
		o.spillDir = filepath.Dir(out)
	}
	var res *Result
	err = tempfile.WriteAtomic(ctx, out, func(w io.Writer) error {
		if o.progress != nil {
			w = io.MultiWriter(w, o.progress)
		}
		var werr error
		res, werr = reorderCompressed(ctx, o, w, src.r, codec, comp)
		return werr
	})
	if err != nil {
		return nil, fmt.Errorf("reorder %s: %w", in, err)
	}
	res.Compression = comp
	return res, nil
}

// reorderCompressed compresses the reordered stream into w; the compressor
// ends its first frame when reorder reaches the end of the metadata.
func reorderCompressed(ctx context.Context, o *options, w io.Writer, src io.Reader, codec Codec, comp string) (*Result, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	c, err := codec.Compress(bw, comp)
	if err != nil {
		return nil, err
	}
	res, err := reorder(ctx, o, c, src)
	if err != nil {
		if a, ok := c.(Aborter); ok {
			a.Abort()
		}
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("finishing %s stream: %w", comp, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return res, ctx.Err()
}

// outputCompression is the one asked for, else (in place) the input's, else
// the one out's name implies. A request that contradicts the name is refused.
func outputCompression(codec Codec, asked, out string, inPlace bool, input string) (string, error) {
	fromName, nameErr := codec.FromPath(out)
	if asked != "" {
		if nameErr == nil && asked != fromName {
			return "", fmt.Errorf("compression %s does not match the name %s (%s): rename the output", asked, out, fromName)
		}
		return asked, nil
	}
	if inPlace {
		return input, nil
	}
	return fromName, nameErr
}
