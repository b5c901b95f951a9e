package bundle

import (
	"archive/tar"
	"path"
	"strings"
	"testing"

	"github.com/rancher/ferry/reorder"
)

func TestMetadataRank(t *testing.T) {
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := make([]byte, 512) // a tar layer: a name, then NULs
	copy(layer, "{weird-file-name")
	tests := []struct {
		name string
		size int64
		head []byte
		want int
	}{
		{"oci-layout", 30, []byte(`{"imageLayoutVersion":"1.0.0"}`), RankOCILayout},
		{"./oci-layout", 30, nil, RankOCILayout},
		{"index.json", 300, []byte(`{"schemaVersion":2}`), RankIndex},
		{"manifest.json", 300, []byte(`[{"Config":"x"}]`), RankManifest},
		{"/manifest.json", 300, nil, RankManifest},
		{"repositories", 60, []byte(`{"busybox":{}}`), RankRepositories},
		// Names decide these even when large: loaders look for them first.
		{"index.json", 64 << 20, nil, RankIndex},

		{"blobs/sha256/" + strings.Repeat("a", 64), int64(len(config)), config, RankSmall},
		{"sha256:" + strings.Repeat("b", 64), int64(len(config)), config, RankSmall},
		{strings.Repeat("c", 64) + ".json", 100, []byte("\n  [1]"), RankSmall},
		{"0123abcd/json", 20, []byte(`{"id":"0123abcd"}`), RankSmall},
		{"0123abcd/json", 0, nil, RankSmall},
		{"0123abcd/VERSION", 3, []byte("1.0"), RankSmall},
		{"VERSION", 3, []byte("1.0"), RankSmall},
		{"blobs/", 0, nil, RankSmall},
		{"blobs/sha256/", 0, nil, RankSmall},
		{"\xef\xbb\xbf.json", 4, []byte("\xef\xbb\xbf{}"), RankSmall},

		{"0123abcd/layer.tar", 10 << 20, layer, reorder.Bulk},
		{strings.Repeat("d", 64) + ".tar.gz", 1000, []byte{0x1f, 0x8b, 8, 0}, reorder.Bulk},
		{"blobs/sha256/" + strings.Repeat("e", 64), MaxSmallMetadata + 1, config, reorder.Bulk},
		{"small-layer.tar", 1024, layer, reorder.Bulk},
		{"blobs/sha256/empty", 0, nil, reorder.Bulk},
		{"a/b/json", 20, nil, reorder.Bulk},
		{"a/b/VERSION", 3, nil, reorder.Bulk},
		{"nested/manifest.json", 300, []byte("not json"), reorder.Bulk},
		{"negative", -1, config, reorder.Bulk},
		{"text", 5, []byte("hello"), reorder.Bulk},
	}
	for _, tt := range tests {
		if got := MetadataRank(tt.name, tt.size, tt.head); got != tt.want {
			t.Errorf("MetadataRank(%q, %d, %.20q) = %d, want %d", tt.name, tt.size, tt.head, got, tt.want)
		}
	}
}

// The rank order is the bundle's contract with loaders: never reshuffle it silently.
func TestMetadataRankOrder(t *testing.T) {
	order := []int{RankOCILayout, RankIndex, RankManifest, RankRepositories, RankSmall, reorder.Bulk}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("rank %d (%d) not below rank %d (%d)", i-1, order[i-1], i, order[i])
		}
	}
}

func TestHeaderRank(t *testing.T) {
	config := []byte(`{"os":"linux"}`)
	tests := []struct {
		hdr  tar.Header
		head []byte
		want int
	}{
		{tar.Header{Name: "blobs", Typeflag: tar.TypeDir}, nil, RankSmall},
		{tar.Header{Name: "blobs/", Typeflag: tar.TypeDir}, nil, RankSmall},
		{tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Size: 10}, nil, RankManifest},
		{tar.Header{Name: "c.json", Typeflag: tar.TypeReg, Size: int64(len(config))}, config, RankSmall},
		{tar.Header{Name: "l.tar", Typeflag: tar.TypeReg, Size: 1 << 20}, []byte("l"), reorder.Bulk},
		{tar.Header{Name: "abc/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../def/layer.tar"}, nil, reorder.Bulk},
		{tar.Header{Name: "abc/json", Typeflag: tar.TypeSymlink, Linkname: "../def/json"}, nil, RankSmall},
		{tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "l.tar"}, nil, reorder.Bulk},
		{tar.Header{Name: "dev", Typeflag: tar.TypeChar}, nil, reorder.Bulk},
	}
	for _, tt := range tests {
		if got := HeaderRank(&tt.hdr, tt.head); got != tt.want {
			t.Errorf("HeaderRank(%q type %q) = %d, want %d", tt.hdr.Name, tt.hdr.Typeflag, got, tt.want)
		}
	}
}

// FuzzCleanName checks cleanName's shortcut for names that are clean
// already against the definition: path.Clean of the name made absolute.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "./a", "/a", "a/", "a//b", "a/./b", "../a", "..a", "a/..", "blobs/sha256/ab", "index.json", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := strings.TrimPrefix(path.Clean("/"+name), "/")
		if got := cleanName(name); got != want {
			t.Fatalf("cleanName(%q) = %q, want %q", name, got, want)
		}
	})
}
