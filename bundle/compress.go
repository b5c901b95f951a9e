package bundle

import (
	"bufio"

	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names how a bundle's tar stream is compressed.
type Compression string

const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// MaxZstdWindow is the largest zstd window a bundle may use: k3s and rke2
// decode with zstd.WithDecoderMaxMemory(1<<25) and reject anything larger.
const MaxZstdWindow = 1 << 25

// ErrUnknownCompression is returned for an unrecognised --compression value
// or output extension.
var ErrUnknownCompression = errors.New("unknown compression")

// ParseCompression accepts "zstd", "gzip" or "none" (also "gz", "zst", "tar").
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "zstd", "zst":
		return Zstd, nil
	case "gzip", "gz":
		return Gzip, nil
	case "none", "tar", "":
		return None, nil
	}
	return "", fmt.Errorf("%w %q: use zstd, gzip or none", ErrUnknownCompression, s)
}

// CompressionFromPath infers compression from a file name's extension.
func CompressionFromPath(path string) (Compression, error) {
	p := strings.ToLower(path)
	switch {
	case strings.HasSuffix(p, ".tar.zst"), strings.HasSuffix(p, ".tzst"), strings.HasSuffix(p, ".tar.zstd"):
		return Zstd, nil
	case strings.HasSuffix(p, ".tar.gz"), strings.HasSuffix(p, ".tgz"):
		return Gzip, nil
	case strings.HasSuffix(p, ".tar"):
		return None, nil
	}
	return "", fmt.Errorf("%w: cannot tell from %q; name it .tar.zst, .tar.gz or .tar, or pass --compression", ErrUnknownCompression, path)
}

// DefaultLevel is 0: each codec's default; for zstd that is compression by
// content (see zstdauto.go): level 1 for what does not compress, the
// strongest level for what does.
const DefaultLevel = 0

// Compressor writes a compressed stream whose frames can be ended early, so
// that a reader can decode the metadata frame without touching the layers.
type Compressor struct {
	dst  io.Writer
	kind Compression
	zw   *zstd.Encoder
	pz   *parallelZstd
	gw   *gzip.Writer
}

// NewCompressor wraps dst. level 0 picks the codec's default; zstd levels
// follow the zstd command line (1..22), gzip levels 1..9. Of the options,
// it uses WithSpillDir; the others are Write's.
func NewCompressor(dst io.Writer, c Compression, level int, opts ...Option) (*Compressor, error) {
	if dst == nil {
		return nil, fmt.Errorf("%w: NewCompressor needs a destination", ErrNilArgument)
	}
	if err := CheckCompression(c, level); err != nil {
		return nil, err
	}
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	cw := &Compressor{dst: dst, kind: c}
	switch c {
	case None:
	case Gzip:
		if level == 0 {
			level = gzip.DefaultCompression
		}
		gw, err := gzip.NewWriterLevel(dst, level)
		if err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", level, err)
		}
		cw.gw = gw
	case Zstd:
		if level < longWindowLevel {
			pz, err := newParallelZstd(dst, level, o)
			if err != nil {
				return nil, fmt.Errorf("zstd level %d: %w", level, err)
			}
			cw.pz = pz
			break
		}
		zw, err := zstd.NewWriter(dst, zstdOptions(level)...)
		if err != nil {
			return nil, fmt.Errorf("zstd level %d: %w", level, err)
		}
		cw.zw = zw
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCompression, c)
	}
	return cw, nil
}

// defaultZstdLevel is the level for data that does not compress: registry
// layers are already gzip or zstd, so higher levels cost time and save
// nothing (BenchmarkWrite: out/in is 1.000 at levels 1, 3 and 9 on gzip
// layers, and level 1 is the fastest).
const defaultZstdLevel = 1

// longWindowLevel and above compress as one stream with the full 32 MiB
// window, for users who ask for maximum compression; below it, 2 MiB
// chunks are compressed in parallel.
const longWindowLevel = 19

func zstdOptions(level int) []zstd.EOption {
	if level == 0 {
		level = defaultZstdLevel
	}
	return []zstd.EOption{
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithWindowSize(zstdWindow(level)),
		zstd.WithEncoderCRC(true),
	}
}

// zstdWindow keeps the window at or below MaxZstdWindow; the library's own
// default for high levels is smaller still, so this is only ever a cap.
func zstdWindow(level int) int {
	if level >= longWindowLevel {
		return MaxZstdWindow
	}
	return 8 << 20
}

func (c *Compressor) Write(p []byte) (int, error) {
	switch {
	case c.pz != nil:
		return c.pz.Write(p)
	case c.zw != nil:
		return c.zw.Write(p)
	case c.gw != nil:
		return c.gw.Write(p)
	}
	return c.dst.Write(p)
}

// EndFrame finishes the current zstd frame (or gzip member) and starts a new
// one. Every zstd and gzip reader concatenates frames transparently.
func (c *Compressor) EndFrame() error {
	switch {
	case c.pz != nil:
		return c.pz.Flush()
	case c.zw != nil:
		if err := c.zw.Close(); err != nil {
			return err
		}
		c.zw.Reset(c.dst)
	case c.gw != nil:
		if err := c.gw.Close(); err != nil {
			return err
		}
		c.gw.Reset(c.dst)
	}
	return nil
}

// Cut ends the current frame where the stream has a seek table, without
// waiting for the frames in flight: Write cuts before and after each layer's
// header, so a seekable reader decompresses a header, or a layer, alone. For
// other codecs it does nothing (a gzip member per layer would cost bytes
// and give a reader nothing to seek by).
func (c *Compressor) Cut() {
	if c.pz != nil {
		c.pz.Cut()
	}
}

// metadata marks what is written from now on, up to the next EndFrame, as
// a bundle's metadata section, which content-based zstd compresses with
// less memory than layers.
func (c *Compressor) metadata(on bool) {
	if c.pz != nil {
		c.pz.metadata(on)
	}
}

// Seekable reports whether the stream ends with a seek table.
func (c *Compressor) Seekable() bool { return c.pz != nil }

// Abort gives up on the stream: compression running in the background
// stops, and its memory and temp files are released. Call it instead of
// Close when the stream will not be finished (on an error or when the
// context is done); after Close it does nothing.
func (c *Compressor) Abort() {
	if c.pz != nil {
		c.pz.Abort()
	}
}

// Close ends the last frame, and writes the seek table of a seekable zstd
// stream. It does not close dst. When it fails, the stream is aborted.
func (c *Compressor) Close() error {
	switch {
	case c.pz != nil:
		return c.pz.Close()
	case c.zw != nil:
		return c.zw.Close()
	case c.gw != nil:
		return c.gw.Close()
	}
	return nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression looks at the first bytes of br without consuming them.
func DetectCompression(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return detect(head), nil
}

// Decompress returns the tar stream inside r, detecting the compression from
// its magic bytes. zstd input is decoded with the same 32 MiB window limit as
// k3s and rke2, so a bundle ferry can read is one they can read.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	if r == nil {
		return nil, "", fmt.Errorf("%w: Decompress needs a reader", ErrNilArgument)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	c, err := DetectCompression(br)
	if err != nil {
		return nil, "", fmt.Errorf("reading archive header: %w", err)
	}
	switch c {
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(MaxZstdWindow), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	case Gzip:
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		return gr, c, nil
	}
	return io.NopCloser(br), c, nil
}

// DecompressFile opens an archive file and returns its decompressed tar stream;
// closing it closes the decompressor and the file.
func DecompressFile(path string) (io.ReadCloser, Compression, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	rc, c, err := Decompress(f)
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return &fileStream{ReadCloser: rc, file: f}, c, nil
}

type fileStream struct {
	io.ReadCloser
	file *os.File
}

func (s *fileStream) Close() error {
	return errors.Join(s.ReadCloser.Close(), s.file.Close())
}
