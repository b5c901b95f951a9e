package bundle

import (
	"bufio"
	"io"

	"github.com/rancher/ferry/reorder"
)

// ReorderCodec lets reorder.File read and write the compressions bundles
// use, named as Compression names them: zstd, gzip and none.
type ReorderCodec struct {
	// Level is the output's compression level, as for NewCompressor.
	Level int
	// SpillDir is where zstd compression by content keeps the input of
	// frames in flight (see WithSpillDir): the output's directory.
	SpillDir string
}

var _ reorder.Codec = ReorderCodec{}

// Detect is DetectCompression.
func (ReorderCodec) Detect(br *bufio.Reader) (string, error) {
	c, err := DetectCompression(br)
	return string(c), err
}

// FromPath is CompressionFromPath.
func (ReorderCodec) FromPath(path string) (string, error) {
	c, err := CompressionFromPath(path)
	return string(c), err
}

// Decompress is Decompress.
func (ReorderCodec) Decompress(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := Decompress(r)
	return rc, err
}

// Compress is NewCompressor at the codec's Level.
func (c ReorderCodec) Compress(w io.Writer, compression string) (reorder.Compressor, error) {
	return NewCompressor(w, Compression(compression), c.Level, WithSpillDir(c.SpillDir))
}

// Reread is true for zstd: decoding it again is several times faster than
// writing the decoded stream to a spill file and reading it back (see the
// reorder benchmarks); gzip decodes slower than that.
func (ReorderCodec) Reread(compression string) bool {
	return Compression(compression) == Zstd
}
