package verifytest

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
)

// FuzzSeeds are small archives of every kind verify reads, plus a few
// broken ones, named. The fuzz tests of bundle and bundle/verify keep them
// in testdata/fuzz; FERRY_WRITE_FUZZ_SEEDS=1 regenerates them.
func FuzzSeeds() map[string][]byte {
	f := NewFixture(21, 256)
	es := Entries(f.Tar)
	blobs := Blobs{}
	l := GzipLayer(TarLayer(22, 256))
	img := Image("docker.io/rancher/tiny:1", "1", Win1809, []Layer{l}, blobs)
	link := Entry{Hdr: tar.Header{Name: "blobs/link", Linkname: "sha256/x", Typeflag: tar.TypeSymlink}}
	return map[string][]byte{
		"bundle-tar":   f.Tar,
		"bundle-zstd":  Zstd(f.Tar),
		"bundle-gzip":  Gzip(f.Tar),
		"crane":        CraneArchive(img, blobs),
		"docker-save":  LegacyArchive(img, [][]byte{TarLayer(22, 256)}),
		"symlink":      Tar(append(es, link)),
		"truncated":    f.Tar[:len(f.Tar)/2],
		"metadataLast": Tar(append(append([]Entry(nil), es[4:]...), es[:4]...)),
	}
}

// WriteFuzzSeeds writes FuzzSeeds into dir (testdata/fuzz/<FuzzTarget>) in
// the format of go test's fuzz corpus.
func WriteFuzzSeeds(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range FuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
