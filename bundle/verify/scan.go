package verify

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/internal/inflate"

	"github.com/rancher/ferry/reorder"
)

// Bounds on what a hostile archive can make Archive hold in memory. Real
// bundles have hundreds of entries and a few MB of JSON.
const (
	maxVerifyEntries = 1 << 17
	maxMetadataTotal = 64 << 20
	maxNameLen       = 1024
	// maxTrailing is how much past the tar's end Archive reads to let the
	// decompressor check its checksums, and to spot appended data.
	maxTrailing = 64 << 20
)

// vEntry is one tar entry as Archive saw it.
type vEntry struct {
	name   string // cleaned, as references name it
	typ    byte
	size   int64
	order  int
	link   string // the cleaned target of a symlink or hard link
	meta   bool   // small JSON (or legacy metadata) kept in data
	data   []byte
	ref    bool // something refers to it
	sparse bool // stored as a GNU sparse file
	// Result may be written by a worker: read it only after the pool is
	// done.
	inflate.Result
}

func (e *vEntry) regular() bool { return e.typ == tar.TypeReg }

// scan makes the one pass over the archive. It returns true when the archive
// could not be read to its end, which leaves nothing sound to cross-check.
func (v *verifier) scan(ctx context.Context, src *sourceReader) (fatal bool) {
	pool := inflate.NewPool(inflate.Options{Jobs: v.o.jobs, MaxExpansion: v.o.maxExpansion, SpillDir: v.o.spillDir, MaxSpill: v.o.maxSpill})
	defer pool.StopOn(ctx)()
	defer func() {
		if fatal {
			pool.Stop(inflate.ErrStopped) // nothing will read the layers' results
		}
		pool.Wait()
		v.spilled, v.localErr = pool.Done()
	}()
	r, done, err := v.open(src)
	if err != nil {
		v.fail("archive", "", "not readable: %v", err)
		return true
	}
	defer done()
	if v.entriesLoop(ctx, tar.NewReader(r), pool) {
		return true
	}
	pool.Wait()
	v.drainTail(r)
	return false
}

// open returns the tar stream, and a func to call when done with it, which
// records the bytes read.
func (v *verifier) open(src *sourceReader) (io.Reader, func(), error) {
	if v.seek = seekableTar(src); v.seek != nil {
		v.rep.Compression = bundle.None
		return v.seek, func() { v.rep.Bytes, _ = v.seek.Seek(0, io.SeekCurrent) }, nil
	}
	rc, comp, err := bundle.Decompress(src)
	if err != nil {
		return nil, nil, err
	}
	v.rep.Compression = comp
	counted := &countingReader{r: rc}
	return counted, func() { v.rep.Bytes = counted.n; rc.Close() }, nil
}

func (v *verifier) entriesLoop(ctx context.Context, tr *tar.Reader, pool *inflate.Pool) bool {
	for {
		if ctx.Err() != nil {
			return true
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if len(v.order) == 0 {
				v.fail("archive", "", "empty archive: no entries")
				return true
			}
			return false
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			v.archiveError(err)
			return true
		}
		// Count every header, kept or not: rejected entries cost a check
		// each, and a compressed stream of them costs next to nothing.
		if v.headers++; v.headers > maxVerifyEntries {
			v.fail("limit", "", "more than %d entries; not a bundle", maxVerifyEntries)
			return true
		}
		e := v.admit(h)
		if e == nil || !e.regular() {
			continue
		}
		v.current = e.name
		if err := v.readEntry(ctx, tr, e, pool); err != nil {
			v.archiveError(err)
			return true
		}
		v.current = ""
	}
}

// archiveError explains why the tar stream ended early, naming where.
func (v *verifier) archiveError(err error) {
	where := "at the start"
	if n := len(v.order); n > 0 {
		where = "after entry " + v.order[n-1].name
	}
	if v.current != "" {
		where = "in entry " + v.current
	}
	switch {
	case errors.Is(err, errMetadataLimit):
		v.fail("limit", "", "%v", err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		v.add(Check{Name: "archive", Severity: SeverityError, Expected: "zstd window of at most 32 MiB (the k3s/rke2 limit)",
			Found: "a larger window", Message: fmt.Sprintf("zstd %s: %v", where, err)})
	case errors.Is(err, io.ErrUnexpectedEOF):
		v.fail("archive", "", "truncated %s", where)
	case errors.Is(err, tar.ErrFieldTooLong):
		v.fail("archive", "", "tar header %s: %v (names and PAX records are capped at 1 MiB)", where, err)
	case len(v.order) == 0 && errors.Is(err, tar.ErrHeader):
		v.fail("archive", "", "not a tar archive (%s compression): %v", v.rep.Compression, err)
	default:
		v.fail("archive", "", "unreadable %s: %v", where, err)
	}
}

// admit runs the structure checks on a header and records the entry. It
// returns nil for entries that must not be used (unsafe or duplicate).
func (v *verifier) admit(h *tar.Header) *vEntry {
	raw := h.Name
	shown := raw
	if len(shown) > 200 {
		shown = shown[:200] + "…"
	}
	if !v.checkPath(raw, shown) {
		return nil
	}
	e := &vEntry{name: bundle.CleanName(raw), typ: h.Typeflag, size: h.Size, order: len(v.order),
		sparse: h.Typeflag == tar.TypeGNUSparse || hasSparseRecords(h.PAXRecords)}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.typ = tar.TypeReg
	case tar.TypeDir:
	case tar.TypeSymlink, tar.TypeLink:
		if !v.checkLink(e, h) {
			return nil
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		v.add(Check{Name: "type", Entry: shown, Severity: SeverityError, Expected: "regular files, directories and links",
			Found: typeName(h.Typeflag), Message: "special file in an image archive"})
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	default:
		v.warn("type", shown, "unknown entry type %q ignored", h.Typeflag)
		return nil
	}
	if old, dup := v.entries[e.name]; dup {
		if old.typ == tar.TypeDir && e.typ == tar.TypeDir {
			return nil
		}
		v.fail("duplicate", e.name, "stored twice (entries %d and %d); loaders disagree on which one counts", old.order+1, e.order+1)
		return nil
	}
	v.entries[e.name] = e
	v.order = append(v.order, e)
	return e
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("type %q", t)
}

func (v *verifier) checkPath(raw, shown string) bool {
	switch {
	case bundle.CleanName(raw) == "" || bundle.CleanName(raw) == ".":
		v.fail("path", shown, "empty entry name")
	case len(raw) > maxNameLen:
		v.fail("path", shown, "name is %d bytes long, over %d", len(raw), maxNameLen)
	case strings.HasPrefix(raw, "/"):
		v.fail("path", shown, "absolute path")
	case hasDotDot(raw):
		v.fail("path", shown, "path leaves the archive with ..")
	default:
		return true
	}
	return false
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// checkLink refuses links whose target lies outside the archive: a symlink
// is relative to its directory, a hard link to the archive root.
func (v *verifier) checkLink(e *vEntry, h *tar.Header) bool {
	target := h.Linkname
	kind := "hard link"
	resolved := path.Clean(target)
	if h.Typeflag == tar.TypeSymlink {
		kind = "symlink"
		resolved = path.Join(path.Dir(e.name), target)
	}
	if target == "" || strings.HasPrefix(target, "/") || resolved == ".." || strings.HasPrefix(resolved, "../") {
		v.add(Check{Name: "link", Entry: e.name, Severity: SeverityError, Expected: "a target inside the archive",
			Found: fmt.Sprintf("%q", target), Message: kind + " points outside the archive"})
		return false
	}
	e.link = bundle.CleanName(resolved)
	return true
}

var errMetadataLimit = errors.New("metadata limit")

// readEntry keeps small JSON in memory (hashing it here) and streams
// everything else to a hashing worker.
func (v *verifier) readEntry(ctx context.Context, tr *tar.Reader, e *vEntry, pool *inflate.Pool) error {
	buf := inflate.GetChunk()
	n, err := fillEntry(tr, *buf)
	if err != nil && !errors.Is(err, io.EOF) {
		inflate.PutChunk(buf)
		return err
	}
	rank := bundle.MetadataRank(e.name, e.size, (*buf)[:min(n, inflate.SniffLen)])
	if rank < reorder.Bulk && e.size <= bundle.MaxSmallMetadata {
		defer inflate.PutChunk(buf)
		return v.readMeta(tr, e, (*buf)[:n], errors.Is(err, io.EOF))
	}
	if rank < reorder.Bulk {
		v.add(Check{Name: "limit", Entry: e.name, Severity: SeverityError, Expected: fmt.Sprintf("at most %d bytes of JSON", bundle.MaxSmallMetadata),
			Found: fmt.Sprintf("%d bytes", e.size), Message: "metadata too large to read"})
	} else if v.firstBulk == "" {
		v.firstBulk = e.name
	}
	if rest := v.sectionFor(e, n); rest != nil && err == nil {
		pool.OpenAt(ctx, &e.Result, e.size, buf, n, rest)
		return nil // the tar reader seeks past the rest
	}
	s := pool.Open(&e.Result, e.size, (*buf)[:n])
	for {
		s.Send(buf, n)
		if errors.Is(err, io.EOF) {
			s.End(nil)
			return nil
		}
		if err := ctx.Err(); err != nil {
			s.End(err)
			return err
		}
		buf = inflate.GetChunk()
		if n, err = fillEntry(tr, *buf); err != nil && !errors.Is(err, io.EOF) {
			inflate.PutChunk(buf)
			s.End(err)
			return err
		}
	}
}

// fillEntry reads until buf is full or the entry ends (io.EOF).
func fillEntry(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (v *verifier) readMeta(tr *tar.Reader, e *vEntry, head []byte, done bool) error {
	if v.metaBytes += e.size; v.metaBytes > maxMetadataTotal {
		return fmt.Errorf("%w: over %d bytes of JSON in total at %s", errMetadataLimit, maxMetadataTotal, e.name)
	}
	data := append(make([]byte, 0, e.size), head...)
	if !done {
		rest, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		data = append(data, rest...)
	}
	e.meta, e.data, e.Hashed = true, data, true
	e.Blob = inflate.Blob{Digest: inflate.SHA256(data), Kind: inflate.Sniff(data)}
	if e.Blob.Kind == inflate.KindTar {
		e.Diff.ID = e.Blob.Digest
	}
	if v.firstBulk != "" && v.outOfOrd == "" {
		v.outOfOrd = e.name
	}
	return nil
}

// drainTail reads past the end of the tar so that the decompressor checks
// its trailing checksum, and reports data appended after the archive.
func (v *verifier) drainTail(r io.Reader) {
	var total, extra int64
	buf := inflate.GetChunk()
	defer inflate.PutChunk(buf)
	for {
		if total > maxTrailing {
			v.warn("archive", "", "over %d bytes after the end of the tar; not read further", maxTrailing)
			return
		}
		n, err := r.Read(*buf)
		total += int64(n)
		for _, b := range (*buf)[:n] {
			if b != 0 {
				extra++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			v.fail("archive", "", "after the end of the tar: %v", err)
			return
		}
	}
	if extra > 0 {
		v.warn("archive", "", "%d non-zero bytes after the end of the tar", extra)
	}
}

// countingReader counts the decompressed bytes read, for the report.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
