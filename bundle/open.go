package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/reorder"
	"github.com/rancher/ferry/reorder/tarscan"
)

// ErrNotFound is returned when an archive holds no image, or no blob, of
// the name or digest asked for.
var ErrNotFound = errors.New("not found in archive")

// Archive is an image archive opened for random access: a ferry bundle, a
// docker save (old or 25+), crane, skopeo or podman archive, or an OCI
// layout archive. Reading a blob reads only that blob: by offset in a plain
// tar, through the seek table's frames in a ferry zstd bundle; a gzip or
// table-less zstd archive is decompressed from the start instead (see Open).
//
// An Archive is safe for concurrent use.
type Archive struct {
	src    *tarAt
	scan   *tarscan.Scanner
	bulk   map[int]bool // entries that are not metadata, by Index
	index  *v1.IndexManifest
	docker []DockerManifest
	closer io.Closer
	head   [reorder.HeadSize]byte // an entry's first bytes, while Open ranks it
}

// Open indexes the archive in ra, of size bytes. For a plain tar or a zstd
// bundle with a seek table it reads the headers and the metadata only. A
// gzip or table-less zstd archive costs one decompression pass to index,
// and each later read decompresses from the start up to what it reads,
// unless it comes after the previous read in archive order, which continues
// the same pass: reading blobs in archive order decompresses the archive
// once more in total.
func Open(ctx context.Context, ra io.ReaderAt, size int64) (*Archive, error) {
	if ra == nil {
		return nil, fmt.Errorf("%w: Open needs a ReaderAt", ErrNilArgument)
	}
	src, err := openTarAt(ra, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAnArchive, err)
	}
	a := &Archive{src: src, scan: tarscan.NewReaderAtScanner(src, src.size, tarscan.Limits{}), bulk: map[int]bool{}}
	if err := a.index1(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// OpenPath opens an archive file, or an OCI layout directory (see
// OpenDir); Close closes it.
func OpenPath(ctx context.Context, path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return OpenDir(ctx, path)
	}
	a, err := Open(ctx, f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a.closer = f
	return a, nil
}

// Close releases the archive, and the file OpenPath opened.
func (a *Archive) Close() error {
	var errs []error
	if a.src == nil {
		return nil
	}
	if c, ok := a.src.ReaderAt.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if a.closer != nil {
		errs = append(errs, a.closer.Close())
	}
	return errors.Join(errs...)
}

// Compression is the archive's codec.
func (a *Archive) Compression() Compression { return a.src.compression }

// Seekable reports whether blobs are read without decompressing what
// precedes them: a plain tar, or zstd with a seek table.
func (a *Archive) Seekable() bool { return a.src.compression == None || a.src.seekable }

// Inflated is how many bytes of the tar stream reading the archive has
// cost so far: decompressed, or for a plain tar, read.
func (a *Archive) Inflated() int64 { return a.src.inflated.Load() }

// index1 walks every header, ranking each entry as ReadContents does,
// then reads index.json and manifest.json. In an archive of thousands of
// images both are megabytes of JSON, so where reading them does not move
// the walk's decompression pass (a seekable archive), each is decoded in a
// goroutine of its own as soon as the walk has passed it.
func (a *Archive) index1(ctx context.Context) error {
	layout := [...]struct {
		name string
		v    any
		job  *decodeJob
	}{{name: IndexFile, v: &a.index}, {name: ManifestFile, v: &a.docker}}
	err := a.walk(ctx, func(e *tarscan.Entry) {
		for i := range layout {
			if l := &layout[i]; e.Name == l.name && e.Header.Typeflag == tar.TypeReg && a.Seekable() {
				l.job = a.decodeAsync(*e, l.v)
			}
		}
	})
	for _, l := range layout {
		if l.job != nil {
			<-l.job.done
		}
	}
	if err != nil {
		return err
	}
	for _, l := range layout {
		var err error
		if l.job != nil {
			err = l.job.err
		} else {
			err = a.readJSON(l.name, l.v)
		}
		if err != nil {
			return err
		}
	}
	if a.index == nil && a.docker == nil {
		return fmt.Errorf("%w: no %s or %s", ErrNotAnArchive, IndexFile, ManifestFile)
	}
	return nil
}

// walk reads and ranks every entry, calling ranked after each one.
func (a *Archive) walk(ctx context.Context, ranked func(*tarscan.Entry)) error {
	for {
		e, err := a.scan.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = a.rank(e)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotAnArchive, err)
		}
		ranked(e)
	}
	if len(a.scan.Entries()) == 0 {
		return fmt.Errorf("%w: empty archive", ErrNotAnArchive)
	}
	return nil
}

// decodeJob is a metadata file being decoded; err is set once done is closed.
type decodeJob struct {
	done chan struct{}
	err  error
}

// decodeAsync decodes regular entry e into v in a new goroutine.
func (a *Archive) decodeAsync(e tarscan.Entry, v any) *decodeJob {
	j := &decodeJob{done: make(chan struct{})}
	go func() {
		defer close(j.done)
		raw, err := a.readEntry(&e)
		if err == nil {
			err = decodeJSON(e.Name, raw, v)
		}
		j.err = err
	}()
	return j
}

// rank classifies a regular entry by its name, size and first bytes (which
// a ferry bundle keeps in the header's frame) and charges metadata to the
// scanner's budget, so Open refuses what every other reader refuses.
func (a *Archive) rank(e *tarscan.Entry) error {
	if e.Header.Typeflag != tar.TypeReg {
		return nil
	}
	var head []byte
	if e.Size() <= MaxSmallMetadata || MetadataRank(e.Name, e.Size(), nil) < RankSmall {
		head = a.head[:min(e.Size(), reorder.HeadSize)]
		if _, err := io.ReadFull(a.scan, head); err != nil {
			return fmt.Errorf("reading %s: %w", e.Name, err)
		}
	}
	if MetadataRank(e.Name, e.Size(), head) >= reorder.Bulk {
		a.bulk[e.Index] = true
		return nil
	}
	return a.scan.Charge()
}

// readJSON decodes a metadata file if the archive has it.
func (a *Archive) readJSON(name string, v any) error {
	if _, ok := a.scan.Lookup(name); !ok {
		return nil
	}
	raw, err := a.readSmall(name)
	if err != nil {
		return err
	}
	return decodeJSON(name, raw, v)
}

func decodeJSON(name string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotAnArchive, name, err)
	}
	return nil
}

// readSmall reads a whole metadata entry, at most MaxSmallMetadata bytes.
func (a *Archive) readSmall(name string) ([]byte, error) {
	e, err := a.resolve(name)
	if err != nil {
		return nil, err
	}
	return a.readEntry(e)
}

// readEntry reads a regular entry whole, at most MaxSmallMetadata bytes.
func (a *Archive) readEntry(e *tarscan.Entry) ([]byte, error) {
	if e.Size() > MaxSmallMetadata {
		return nil, fmt.Errorf("%w: %s is %d bytes, over %d", tarscan.ErrLimit, e.Name, e.Size(), MaxSmallMetadata)
	}
	buf := make([]byte, e.Size())
	if _, err := io.ReadFull(io.NewSectionReader(a.src, e.DataOffset, e.Size()), buf); err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Name, err)
	}
	return buf, nil
}

// resolve finds a regular file by name, following hard and symbolic links
// (old docker save links shared layers between image directories).
func (a *Archive) resolve(name string) (*tarscan.Entry, error) {
	for hops := 0; hops < 16; hops++ {
		e, ok := a.scan.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		switch {
		case e.Link >= 0:
			return &a.scan.Entries()[e.Link], nil
		case e.Header.Typeflag == tar.TypeSymlink:
			name = linkTarget(name, e.Header.Linkname)
		default:
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: %s: too many links", ErrNotFound, name)
}

// linkTarget resolves a symlink's target relative to the link's directory.
func linkTarget(link, target string) string {
	return path.Join(path.Dir(link), strings.ReplaceAll(target, `\`, "/"))
}
