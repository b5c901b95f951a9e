package verifytest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/reorder/tarscan"
)

// readerCases are the archives on which ferry's readers once disagreed:
// names that are only unsafe on Windows, a PAX global header, a missing
// end-of-archive marker, two manifest.json, metadata past the shared
// budget, and zstd streams that open with a skippable frame or end with a
// seek table.
func readerCases(f *Fixture) []Case {
	es := Entries(f.Tar)
	with := func(more ...Entry) []byte { return Tar(append(append([]Entry(nil), es...), more...)) }
	global := Entry{Hdr: tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "renamed"}}}
	manifest := es[Find(es, bundle.ManifestFile)]
	return []Case{
		{Name: "backslash dot-dot path", Data: with(Reg(`..\..\evil.dll`, []byte("x"))), AllowExt: true,
			Check: "path", Mention: "evil.dll", Reject: tarscan.ErrUnsafePath},
		{Name: "drive letter path", Data: with(Reg(`C:\Windows\System32\evil.dll`, []byte("x"))), AllowExt: true,
			Check: "path", Mention: "evil.dll", Reject: tarscan.ErrUnsafePath},
		{Name: "PAX global header", Data: Tar(append([]Entry{global}, es...)),
			Check: "type", Mention: "type 'g'", Reject: tarscan.ErrUnsupportedType},
		{Name: "no end-of-archive marker", Data: f.Tar[:len(f.Tar)-2*tarscan.BlockSize],
			Check: "archive", Mention: "end-of-archive", Reject: tarscan.ErrTruncated},
		{Name: "duplicate manifest.json", Data: with(manifest), AllowExt: true,
			Check: "duplicate", Mention: bundle.ManifestFile, Reject: tarscan.ErrDuplicate},
		{Name: "10 JSON entries of 4 MiB, zstd", Data: Zstd(Tar(append(bigJSONs(10), es...))),
			Check: "limit", Mention: "metadata over 32 MiB", Reject: tarscan.ErrLimit},
		{Name: "zstd after a skippable frame", Data: Skippable(Zstd(f.Tar)), WantOK: true},
		{Name: "ferry zstd with a seek table", Data: SeekableZstd(f), WantOK: true},
	}
}

// bigJSONs are n JSON files just under bundle.MaxSmallMetadata each: each
// counts as metadata, and together they pass tarscan's buffered budget.
func bigJSONs(n int) []Entry {
	body := bytes.Repeat([]byte("x"), bundle.MaxSmallMetadata-1024)
	data := append(append([]byte(`{"pad":"`), body...), `"}`...)
	out := make([]Entry, n)
	for i := range out {
		out[i] = Reg(fmt.Sprintf("pad/%d.json", i), data)
	}
	return out
}

// Skippable prefixes a zstd stream with a skippable frame holding the next
// frame's size, as pzstd writes before every frame.
func Skippable(zst []byte) []byte {
	frame := make([]byte, 12)
	binary.LittleEndian.PutUint32(frame, 0x184D2A50)
	binary.LittleEndian.PutUint32(frame[4:], 4)
	binary.LittleEndian.PutUint32(frame[8:], uint32(len(zst)))
	return append(frame, zst...)
}

// SeekableZstd writes the fixture's images as `ferry bundle` writes a
// .tar.zst: independent frames and a seek table at the end.
func SeekableZstd(f *Fixture) []byte {
	var buf bytes.Buffer
	err := bundle.Write(context.Background(), &buf, f.Images, f.Blobs, bundle.WithSkipForeignLayers(true), bundle.WithCompression(bundle.Zstd, 0))
	if err != nil {
		panic(err)
	}
	return buf.Bytes()
}
