package reorder

import (
	"io"
	"path/filepath"
	"testing"
)

// BenchmarkReorder reorders a ~200 MB docker-save-like archive (metadata
// last) to io.Discard, so it measures reading and copying, not output
// compression. The zstd and gzip cases compare the two ways of handling a
// compressed stream: decompressing it twice (reread) or spilling it to a
// temporary file once (spill). "text" layers compress about 2:1, like the
// uncompressed layer tars docker save writes; the others are incompressible.
//
//	go test ./reorder -run '^$' -bench BenchmarkReorder -benchtime 3x
func BenchmarkReorder(b *testing.B) {
	dir := b.TempDir()
	type input struct {
		plain string
		size  int64
	}
	inputs := map[bool]input{}
	for _, compressible := range []bool{false, true} {
		plain := filepath.Join(dir, map[bool]string{false: "random.tar", true: "text.tar"}[compressible])
		size := writeLegacyArchive(b, plain, 20, 10<<20, compressible)
		inputs[compressible] = input{plain, size}
		for _, kind := range []string{"zstd", "gzip"} {
			compressFile(b, plain, plain+"."+kind, kind)
		}
	}
	cases := []struct {
		name         string
		compressible bool
		kind         string
		st           Strategy
	}{
		{"tar/indexed", false, "", Indexed},
		{"zstd/reread", false, "zstd", Reread},
		{"zstd/spill", false, "zstd", Spill},
		{"gzip/reread", false, "gzip", Reread},
		{"gzip/spill", false, "gzip", Spill},
		{"zstd-text/reread", true, "zstd", Reread},
		{"zstd-text/spill", true, "zstd", Spill},
		{"gzip-text/reread", true, "gzip", Reread},
		{"gzip-text/spill", true, "gzip", Spill},
	}
	for _, c := range cases {
		in := inputs[c.compressible]
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(in.size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reorderFile(in.plain, in.plain+"."+c.kind, c.st, dir, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
