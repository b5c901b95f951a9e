package tarscan

import (
	"archive/tar"
	"io"
	"path/filepath"
	"time"
)

// plainHeader returns the header archive/tar's Reader.Next would return
// for blk, when blk is a plain USTAR header (no PAX or GNU extension, no
// base-256 number, ASCII only) of a regular file, directory, symlink or hard
// link that tar.Reader returns without an error. For every other block it
// returns nil, and the scanner lets tar.Reader read it: plainHeader is
// only a faster way to the same result for the headers image tools write
// (tar.Reader reads each header through several allocations and a rune by
// rune scan of the block), and FuzzPlainHeader holds it to that.
func plainHeader(blk *[BlockSize]byte) *tar.Header {
	switch blk[156] {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return nil
	}
	if string(blk[257:263]) != "ustar\x00" || string(blk[508:512]) == "tar\x00" {
		return nil // not USTAR, or the STAR variant
	}
	var sum int64
	for i, c := range blk {
		if c >= 0x80 {
			return nil // tar.Reader calls the format unknown
		}
		if 148 <= i && i < 156 {
			c = ' '
		}
		sum += int64(c) // signed and unsigned sums agree: ASCII only
	}
	// Numeric fields must end in NUL, or tar.Reader calls the format unknown.
	for _, end := range [...]int{100 + 8, 108 + 8, 116 + 8, 124 + 12, 136 + 12, 329 + 8, 337 + 8} {
		if blk[end-1] != 0 {
			return nil
		}
	}
	var p plainParser
	if p.octal(blk[148:156]) != sum {
		return nil
	}
	h := &tar.Header{
		Typeflag: blk[156],
		Name:     cString(blk[0:100]),
		Linkname: cString(blk[157:257]),
		Size:     p.octal(blk[124:136]),
		Mode:     p.octal(blk[100:108]),
		Uid:      int(p.octal(blk[108:116])),
		Gid:      int(p.octal(blk[116:124])),
		ModTime:  time.Unix(p.octal(blk[136:148]), 0),
		Uname:    cString(blk[265:297]),
		Gname:    cString(blk[297:329]),
		Devmajor: p.octal(blk[329:337]),
		Devminor: p.octal(blk[337:345]),
		Format:   tar.FormatUSTAR,
	}
	if prefix := cString(blk[345:500]); prefix != "" {
		h.Name = prefix + "/" + h.Name
	}
	if p.bad || h.Size < 0 || !filepath.IsLocal(h.Name) {
		return nil // tar.Reader's errors, and GODEBUG=tarinsecurepath=0's
	}
	return h
}

// plainParser parses octal fields as tar.Reader does; bad records a field
// tar.Reader would reject.
type plainParser struct{ bad bool }

// octal trims NULs and spaces at both ends, stops at a NUL within, and
// reads the rest as an unsigned octal number of 64 bits at most.
func (p *plainParser) octal(b []byte) int64 {
	for len(b) > 0 && (b[0] == 0 || b[0] == ' ') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return 0
	}
	var x uint64
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < '0' || c > '7' || x>>61 != 0 {
			p.bad = true
			return 0
		}
		x = x<<3 | uint64(c-'0')
	}
	return int64(x)
}

// cString is a NUL-terminated field, or the whole field without a NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// plainEntry reads the data of an entry plainHeader read, as tar.Reader
// would: up to the header's size (none for links and directories), with
// io.ErrUnexpectedEOF if the archive ends first. As the scanner's
// offsetter, it counts what was read, as tar.Reader's counter does.
type plainEntry struct {
	ra       io.ReaderAt
	off, end int64
}

func (e *plainEntry) Read(p []byte) (int, error) {
	if e.off >= e.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.end-e.off)]
	n, err := e.ra.ReadAt(p, e.off)
	e.off += int64(n)
	if n < len(p) && (err == nil || err == io.EOF) {
		err = io.ErrUnexpectedEOF
	} else if n == len(p) {
		err = nil
	}
	return n, err
}

func (e *plainEntry) offset() int64 { return e.off }

// dataSize is how many data bytes tar.Reader reads for h.
func dataSize(h *tar.Header) int64 {
	if h.Typeflag == tar.TypeReg {
		return h.Size
	}
	return 0
}
