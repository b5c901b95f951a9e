package bundle

import (
	"bytes"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The streamed documents must be byte for byte what json.Marshal gives,
// so bundles stay identical and their size is the one in the tar header.
func TestJSONListMatchesMarshal(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var docker []dockerManifest
	for i, name := range []string{"r.example/a:1", "r.example/b<&>:2", "r.example/c:3"} {
		index.Manifests = append(index.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(i), Digest: h,
			Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}, Annotations: map[string]string{AnnotationContainerdName: name}})
		docker = append(docker, dockerManifest{Config: BlobPath(h), RepoTags: []string{name}, Layers: []string{BlobPath(h)}})
	}
	for _, n := range []int{0, 1, 3} {
		idx := index
		idx.Manifests = index.Manifests[:n]
		got, err := indexList(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, n, func(i int) (any, error) { return idx.Manifests[i], nil })
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(idx)
		checkList(t, got, want)
	}
	got, err := newJSONList([]byte("["), []byte("]"), len(docker), func(i int) (any, error) { return docker[i], nil })
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(docker)
	checkList(t, got, want)
}

func checkList(t *testing.T, l *jsonList, want []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := l.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) || l.size != int64(len(want)) {
		t.Errorf("streamed %q (size %d), json.Marshal %q", buf.Bytes(), l.size, want)
	}
}
