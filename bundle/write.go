package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/reorder"
)

var (
	// ErrDigestMismatch is returned when content does not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch is returned when a blob is shorter or longer than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrNoImages is returned when asked to write a bundle with no images.
	ErrNoImages = errors.New("no images")
)

// epoch is every entry's mtime, so identical input gives identical bytes.
var epoch = time.Unix(0, 0).UTC()

// Write writes a bundle of images to w in one pass: the metadata section
// (oci-layout, index.json, manifest.json, repositories, manifests and
// configs) first, in its own compression frame, then each distinct layer
// streamed from blobs and checked against its digest and size.
func Write(ctx context.Context, w io.Writer, images []Image, blobs Blobs, opts ...Option) (err error) {
	o, err := makeOptions(opts)
	if err != nil {
		return err
	}
	if w == nil {
		return fmt.Errorf("%w: Write needs a writer", ErrNilArgument)
	}
	if len(images) == 0 {
		return ErrNoImages
	}
	records, nmeta, err := plan(images, o)
	if err != nil {
		return err
	}
	cw, err := NewCompressor(w, o.compression, o.level, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cw.Abort()
		}
	}()
	tw := tar.NewWriter(cw)
	cw.metadata(nmeta > 0)
	for i, r := range records {
		if i == nmeta {
			if err := endMetadata(tw, cw); err != nil {
				return err
			}
		}
		if err := writeRecord(ctx, tw, cw, r, blobs, !o.blobsVerified); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing tar: %w", err)
	}
	return cw.Close()
}

// endMetadata closes the first frame so a reader decompresses only it to
// learn everything about the bundle but the layer bytes.
func endMetadata(tw *tar.Writer, cw *Compressor) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := cw.EndFrame(); err != nil {
		return err
	}
	cw.metadata(false)
	return nil
}

func header(r record) *tar.Header {
	h := &tar.Header{Name: r.path(), Mode: 0o644, Size: r.size(), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
	if r.dir {
		h.Mode, h.Size, h.Typeflag = 0o755, 0, tar.TypeDir
	}
	if h.Size > maxUSTARSize {
		// USTAR's size field ends below 8 GiB; a PAX record carries
		// larger sizes, and every loader ferry is tested with reads it.
		h.Format = tar.FormatPAX
	}
	return h
}

// maxUSTARSize is the largest size USTAR's 11 octal digits hold.
const maxUSTARSize = 1<<33 - 1

// writeRecord writes one entry. A streamed blob gets frames of its own in a
// seekable stream: one for its header and first reorder.HeadSize bytes, which is
// all a reader needs to classify it, then the rest of its data and padding.
func writeRecord(ctx context.Context, tw *tar.Writer, cw *Compressor, r record, blobs Blobs, hash bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.blob != nil {
		cw.Cut() // whatever came before ends its frame; the header starts this one
	}
	if err := tw.WriteHeader(header(r)); err != nil {
		return fmt.Errorf("writing %s: %w", r.path(), err)
	}
	if r.list != nil {
		return r.list.writeTo(tw)
	}
	if r.blob == nil {
		_, err := tw.Write(r.data)
		return err
	}
	head := &cutAfter{w: tw, cw: cw, n: min(r.blob.Size, reorder.HeadSize)}
	if err := writeBlob(ctx, head, r, blobs, hash); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil { // the padding, before the cut
		return fmt.Errorf("writing %s: %w", r.path(), err)
	}
	cw.Cut()
	return nil
}

// cutAfter passes writes through and cuts the frame once n bytes have passed.
type cutAfter struct {
	w  io.Writer
	cw *Compressor
	n  int64
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if c.n <= 0 {
		return c.w.Write(p)
	}
	k := int(min(int64(len(p)), c.n))
	n, err := c.w.Write(p[:k])
	if c.n -= int64(n); err != nil {
		return n, err
	}
	if c.n == 0 {
		c.cw.Cut()
	}
	m, err := c.w.Write(p[k:])
	return n + m, err
}

func writeBlob(ctx context.Context, tw io.Writer, r record, blobs Blobs, hash bool) error {
	if blobs == nil {
		return fmt.Errorf("writing %s: %w: no blob source", r.path(), ErrNilArgument)
	}
	rc, err := blobs.Open(ctx, *r.blob)
	if err != nil {
		return fmt.Errorf("opening %s: %w", r.blob.Digest, err)
	}
	defer rc.Close()
	if !hash {
		return copyExact(ctx, tw, rc, *r.blob, nil)
	}
	return copyExact(ctx, tw, rc, *r.blob, sha256.New())
}

// copyBufs are the buffers blobs are copied through: a bundle of
// thousands of small blobs would otherwise allocate one per blob.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyExact copies exactly d.Size bytes and, given a hash, checks their
// digest, so a corrupt cache entry or short read can never make a bundle.
func copyExact(ctx context.Context, dst io.Writer, src io.Reader, d v1.Descriptor, h hash.Hash) error {
	w := dst
	if h != nil {
		w = io.MultiWriter(dst, h)
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	n, err := io.CopyBuffer(w, io.LimitReader(ctxReader{ctx, src}, d.Size), *buf)
	if err == nil && n < d.Size {
		err = io.EOF
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s: got %d of %d bytes", ErrSizeMismatch, d.Digest, n, d.Size)
		}
		return fmt.Errorf("copying %s: %w", d.Digest, err)
	}
	// One more read must hit EOF; it is also where a verifying source
	// reports a bad digest.
	if extra, err := src.Read(make([]byte, 1)); extra > 0 {
		return fmt.Errorf("%w: %s: longer than %d bytes", ErrSizeMismatch, d.Digest, d.Size)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading %s: %w", d.Digest, err)
	}
	if h == nil {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); d.Digest.Algorithm != "sha256" || got != d.Digest.Hex {
		return fmt.Errorf("%w: blob %s hashes to sha256:%s", ErrDigestMismatch, d.Digest, got)
	}
	return nil
}

// ctxReader stops a long copy promptly on SIGINT/SIGTERM.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
