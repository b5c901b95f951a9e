package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// OpenDir opens an OCI image layout directory (oci-layout, index.json,
// blobs/ALG/HEX, as `skopeo copy … oci:DIR` or go-containerregistry's
// layout package write) as an Archive. The directory is read in place as
// if it were a plain tar of its files, so every blob reads by offset and
// nothing is copied; it must not change while the Archive is open.
func OpenDir(ctx context.Context, dir string) (*Archive, error) {
	if _, err := os.Stat(filepath.Join(dir, OCILayoutFile)); err != nil {
		return nil, fmt.Errorf("%w: %s is not an OCI layout directory: %w", ErrNotAnArchive, dir, err)
	}
	t, err := newDirTar(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	a, err := Open(ctx, t, t.size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return a, nil
}

// dirTar is a directory's regular files seen as an uncompressed tar: each
// file is a header held in memory followed by the file's bytes, read from
// the file when asked, then padding; two zero blocks end it.
type dirTar struct {
	segs []dirSegment // in offset order, tiling [0, size)
	size int64
}

// dirSegment is either bytes in memory or a file's bytes.
type dirSegment struct {
	off  int64
	n    int64
	data []byte // header, padding or the end; nil for a file
	path string
}

// newDirTar lays out the files metadata first, as a ferry bundle: the
// top-level files (oci-layout, index.json), then blobs from the smallest,
// so manifests and configs come before layers.
func newDirTar(dir string) (*dirTar, error) {
	type file struct {
		path string
		size int64
		top  bool
	}
	var files []file
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, file{path: p, size: info.Size(), top: filepath.Dir(p) == filepath.Clean(dir)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool {
		a, b := files[i], files[j]
		if a.top != b.top {
			return a.top
		}
		if a.size != b.size && !a.top {
			return a.size < b.size
		}
		return a.path < b.path
	})
	t := &dirTar{}
	for _, f := range files {
		if err := t.addFile(dir, f.path, f.size); err != nil {
			return nil, err
		}
	}
	t.add(dirSegment{data: make([]byte, 2*512)})
	return t, nil
}

func (t *dirTar) add(s dirSegment) {
	s.off = t.size
	if s.data != nil {
		s.n = int64(len(s.data))
	}
	if s.n > 0 {
		t.segs = append(t.segs, s)
		t.size += s.n
	}
}

// addFile appends a file's header, data and padding; the header is what
// archive/tar writes for it (PAX records included for long names).
func (t *dirTar) addFile(dir, p string, size int64) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	// tar.Writer.Flush pads only written data, so the header bytes are
	// exactly what it buffered.
	t.add(dirSegment{data: hdr.Bytes()})
	t.add(dirSegment{n: size, path: p})
	if pad := (512 - size%512) % 512; pad > 0 {
		t.add(dirSegment{data: make([]byte, pad)})
	}
	return nil
}

// ReadAt reads across segments, opening each file for as long as a read
// of it takes, so an open layout holds no descriptors.
func (t *dirTar) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	i := sort.Search(len(t.segs), func(i int) bool { return t.segs[i].off+t.segs[i].n > off })
	n := 0
	for ; n < len(p) && i < len(t.segs); i++ {
		s := t.segs[i]
		want := p[n:min(int64(len(p)), int64(n)+s.off+s.n-off)]
		k, err := s.readAt(want, off-s.off)
		n += k
		off += int64(k)
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s dirSegment) readAt(p []byte, off int64) (int, error) {
	if s.data != nil {
		return copy(p, s.data[off:]), nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err == io.EOF {
		err = fmt.Errorf("%s: %w (the file shrank)", s.path, io.ErrUnexpectedEOF)
	}
	return n, err
}
