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
	"github.com/rancher/ferry/reorder/tarscan"
)

// maxTrailing is how much past the tar's end Archive reads to let the
// decompressor check its checksums, and to spot appended data. What the
// archive itself may hold is bounded by tarscan.DefaultLimits, the limits
// every ferry reader shares.
const maxTrailing = 64 << 20

// vEntry is one tar entry as Archive saw it.
type vEntry struct {
	name  string // canonical, as references name it
	typ   byte
	size  int64
	order int
	link  string // the canonical target of a symlink or hard link
	meta  bool   // small JSON (or legacy metadata) kept in data
	data  []byte
	ref   bool // something refers to it
	// Result may be written by a worker: read it only after the pool is
	// done.
	inflate.Result
}

func (e *vEntry) regular() bool { return e.typ == tar.TypeReg }

// scan makes the one pass over the archive. It returns true when the archive
// could not be read to its end, which leaves nothing sound to cross-check.
func (v *verifier) scan(ctx context.Context, src *sourceReader) (fatal bool) {
	pool := inflate.NewPool(inflate.Options{DigestsOnly: v.o.mode == ModeDigests, Jobs: v.o.jobs, MaxExpansion: v.o.maxExpansion, SpillDir: v.o.spillDir, MaxSpill: v.o.maxSpill})
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
	// The size stays unknown even for a file read by offset, so that a
	// truncated file is reported as a truncated stream is, where it ends.
	if v.entriesLoop(ctx, tarscan.NewScanner(r, -1, tarscan.Limits{}), pool) {
		return true
	}
	pool.Wait()
	v.drainTail(r)
	if v.seek == nil {
		return false
	}
	// A damaged frame fails a loader that decompresses the whole archive,
	// whatever it holds: so does it here, as it does a stream.
	if err := v.seek.CheckFrames(ctx); err != nil {
		v.fail("archive", "", "zstd: %v", err)
		return true
	}
	return false
}

// open returns the tar stream, and a func to call when done with it, which
// records the bytes read.
func (v *verifier) open(src *sourceReader) (io.Reader, func(), error) {
	if v.seek = offsetTar(src); v.seek != nil {
		v.rep.Compression = v.seek.Compression()
		tr := v.seek.Section(0, v.seek.Size())
		return tr, func() { v.rep.Bytes, _ = tr.Seek(0, io.SeekCurrent); tr.Close() }, nil
	}
	rc, comp, err := bundle.Decompress(src)
	if err != nil {
		return nil, nil, err
	}
	v.rep.Compression = comp
	counted := &countingReader{r: rc}
	return counted, func() { v.rep.Bytes = counted.n; rc.Close() }, nil
}

// entriesLoop records every entry the scanner admits and reads the regular
// ones. The scanner's verdict on the archive's structure is final: the first
// entry it refuses ends the pass, as it ends every other ferry reader's.
func (v *verifier) entriesLoop(ctx context.Context, s *tarscan.Scanner, pool *inflate.Pool) bool {
	for {
		te, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			if len(v.order) == 0 {
				v.fail("archive", "", "empty archive: no entries")
				return true
			}
			return false
		}
		if err != nil {
			v.archiveError(err, s)
			return true
		}
		e := v.record(te)
		if !e.regular() {
			continue
		}
		v.current = e.name
		if err := v.readEntry(ctx, s, te, e, pool); err != nil {
			v.archiveError(err, s)
			return true
		}
		v.current = ""
	}
}

// record keeps an entry the scanner admitted.
func (v *verifier) record(te *tarscan.Entry) *vEntry {
	e := &vEntry{name: te.Name, typ: te.Header.Typeflag, size: te.Size(), order: len(v.order)}
	switch {
	case te.Link >= 0:
		e.link = v.order[te.Link].name
	case e.typ == tar.TypeSymlink:
		target := strings.ReplaceAll(te.Header.Linkname, `\`, "/")
		e.link = bundle.CleanName(path.Join(path.Dir(e.name), target))
	}
	v.entries[e.name] = e
	v.order = append(v.order, e)
	return e
}

// checkFor names the check a tarscan verdict fails, so that a report says
// what every other ferry reader refuses the archive for.
func checkFor(err error) string {
	switch {
	case errors.Is(err, tarscan.ErrUnsafePath):
		return "path"
	case errors.Is(err, tarscan.ErrUnsafeLink):
		return "link"
	case errors.Is(err, tarscan.ErrUnsupportedType):
		return "type"
	case errors.Is(err, tarscan.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, tarscan.ErrLimit):
		return "limit"
	}
	return "archive"
}

// archiveError reports why the pass ended early, naming where.
func (v *verifier) archiveError(err error, s *tarscan.Scanner) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // Archive returns the context's error
	}
	if name := checkFor(err); name != "archive" {
		v.fail(name, v.current, "%v", err)
		return
	}
	where := "at the start"
	if n := len(v.order); n > 0 {
		where = "after entry " + v.order[n-1].name
	}
	if v.current != "" {
		where = "in entry " + v.current
	}
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		v.add(Check{Name: "archive", Severity: SeverityError, Expected: "zstd window of at most 32 MiB (the k3s/rke2 limit)",
			Found: "a larger window", Message: fmt.Sprintf("zstd %s: %v", where, err)})
	case errors.Is(err, tarscan.ErrTruncated) && s.Offset() == 0 && !errors.Is(err, io.ErrUnexpectedEOF):
		v.fail("archive", "", "empty archive: no data")
	case errors.Is(err, tarscan.ErrTruncated) && v.current != "":
		v.fail("archive", "", "truncated %s", where)
	case errors.Is(err, tarscan.ErrTruncated):
		v.fail("archive", "", "%v", err)
	case errors.Is(err, tar.ErrFieldTooLong):
		v.fail("archive", "", "tar header %s: %v (names and PAX records are capped at 1 MiB)", where, err)
	case len(v.order) == 0 && errors.Is(err, tar.ErrHeader):
		v.fail("archive", "", "not a tar archive (%s compression): %v", v.rep.Compression, err)
	default:
		v.fail("archive", "", "unreadable %s: %v", where, err)
	}
}

// readEntry keeps small JSON in memory (hashing it here) and streams
// everything else to a hashing worker.
func (v *verifier) readEntry(ctx context.Context, s *tarscan.Scanner, te *tarscan.Entry, e *vEntry, pool *inflate.Pool) error {
	buf := inflate.GetChunk()
	n, err := fillEntry(s, (*buf)[:v.firstRead()])
	if err != nil && !errors.Is(err, io.EOF) {
		inflate.PutChunk(buf)
		return err
	}
	rank := bundle.MetadataRank(e.name, e.size, (*buf)[:min(n, inflate.SniffLen)])
	if rank < reorder.Bulk && e.size <= bundle.MaxSmallMetadata {
		defer inflate.PutChunk(buf)
		return v.readMeta(s, e, (*buf)[:n])
	}
	if rank < reorder.Bulk {
		v.add(Check{Name: "limit", Entry: e.name, Severity: SeverityError, Expected: fmt.Sprintf("at most %d bytes of JSON", bundle.MaxSmallMetadata),
			Found: fmt.Sprintf("%d bytes", e.size), Message: "metadata too large to read"})
	} else if v.firstBulk == "" {
		v.firstBulk = e.name
	}
	if rest := v.sectionFor(te, n); rest != nil && err == nil {
		pool.OpenAt(ctx, &e.Result, e.size, buf, n, rest)
		return nil // the scanner seeks past the rest
	}
	st := pool.Open(&e.Result, e.size, (*buf)[:n])
	for {
		st.Send(buf, n)
		if errors.Is(err, io.EOF) {
			st.End(nil)
			return nil
		}
		if err := ctx.Err(); err != nil {
			st.End(err)
			return err
		}
		buf = inflate.GetChunk()
		if n, err = fillEntry(s, *buf); err != nil && !errors.Is(err, io.EOF) {
			inflate.PutChunk(buf)
			st.End(err)
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

// readMeta reads the rest of a metadata entry through the scanner, which
// charges it to the metadata budget every ferry reader shares.
func (v *verifier) readMeta(s *tarscan.Scanner, e *vEntry, head []byte) error {
	data, err := s.ReadAll(head)
	if err != nil {
		return err
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
