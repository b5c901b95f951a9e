// Package verifytest builds image archives for testing `ferry verify`: a
// small valid bundle, deterministic from a seed, and a corpus of malformed
// archives derived from it. Tests in bundle and cmd/ferry share it, so the
// corpus is generated, never committed as binaries.
package verifytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

// Layer is a layer blob with the diff_id its config should list.
type Layer struct {
	Blob      []byte
	DiffID    v1.Hash
	MediaType types.MediaType
	URLs      []string
}

// Hash returns the sha256 of b as a v1.Hash.
func Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// TarLayer makes an uncompressed layer tar holding one file of size bytes:
// half random (like compressed or binary files), half words (like text and
// code), so gzip has real work both ways, as with real layers.
func TarLayer(seed int64, size int) []byte {
	rnd := rand.New(rand.NewSource(seed))
	content := make([]byte, size)
	rnd.Read(content[:size/2])
	words := strings.Fields("the image layer config manifest blob digest registry bundle windows linux amd64 func return if else for range error nil := {} () package import")
	for at := size / 2; at < size; {
		at += copy(content[at:], words[rnd.Intn(len(words))]+" ")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/file-%d", seed), Mode: 0o644, Size: int64(size), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
	_, _ = tw.Write(content)
	_ = tw.Close()
	return buf.Bytes()
}

// GzipLayer compresses a tar into a distributable layer.
func GzipLayer(tarBytes []byte) Layer {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(tarBytes)
	_ = zw.Close()
	return Layer{Blob: buf.Bytes(), DiffID: Hash(tarBytes), MediaType: types.DockerLayer}
}

// Foreign marks a layer non-distributable, optionally with URLs.
func Foreign(l Layer, urls ...string) Layer {
	l.MediaType, l.URLs = types.DockerForeignLayer, urls
	return l
}

// Blobs serves layer blobs from memory; it implements bundle.Blobs.
type Blobs map[v1.Hash][]byte

func (b Blobs) Open(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	data, ok := b[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Image builds a bundle.Image from layers, registering them in blobs.
// Configs list the given diff_ids, right or wrong, as a test wants them.
func Image(name, tag string, p v1.Platform, layers []Layer, blobs Blobs) bundle.Image {
	cf := v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, OSVersion: p.OSVersion, RootFS: v1.RootFS{Type: "layers"}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2}
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.DiffID)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.MediaType, Size: int64(len(l.Blob)), Digest: Hash(l.Blob), URLs: l.URLs})
		blobs[Hash(l.Blob)] = l.Blob
	}
	cfg, _ := json.Marshal(cf)
	m.Config = v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(cfg)), Digest: Hash(cfg)}
	raw, _ := json.Marshal(m)
	return bundle.Image{Name: name, Tag: tag, Manifest: raw, Config: cfg,
		Descriptor: v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: Hash(raw), Platform: &p}}
}

// Win1809 is the platform of the fixture's images.
var Win1809 = v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.5458"}

// Fixture is a small valid bundle: a runtime and a pause image sharing a
// foreign base layer that is left out, as `ferry bundle --skip-foreign-layers`
// writes it, plus the entry names tests break.
type Fixture struct {
	Images []bundle.Image
	Blobs  Blobs
	// Tar is the uncompressed bundle.
	Tar      []byte
	Layer    string // first layer of the runtime image
	Config   string // the runtime image's config
	Manifest string // the runtime image's manifest
	Foreign  string // the left-out base layer
	Names    []string
}

// NewFixture builds the fixture; layerSize sets each layer's file size.
func NewFixture(seed int64, layerSize int) *Fixture {
	blobs := Blobs{}
	base := Foreign(GzipLayer(TarLayer(seed, layerSize/2)), "https://mcr.microsoft.com/v2/windows/nanoserver/blobs/sha256:0")
	rtLayers := []Layer{base, GzipLayer(TarLayer(seed+1, layerSize)), GzipLayer(TarLayer(seed+2, layerSize))}
	pzLayers := []Layer{base, GzipLayer(TarLayer(seed+3, layerSize/4))}
	f := &Fixture{Blobs: blobs, Names: []string{"docker.io/rancher/rke2-runtime:v1", "docker.io/rancher/mirrored-pause:3.6"}}
	f.Images = []bundle.Image{
		Image(f.Names[0], "v1", Win1809, rtLayers, blobs),
		Image(f.Names[1], "3.6", Win1809, pzLayers, blobs),
	}
	f.Tar = Write(f.Images, blobs, true)
	m, _ := f.Images[0].Parsed()
	f.Foreign = bundle.BlobPath(m.Layers[0].Digest)
	f.Layer = bundle.BlobPath(m.Layers[1].Digest)
	f.Config = bundle.BlobPath(m.Config.Digest)
	f.Manifest = bundle.BlobPath(f.Images[0].Descriptor.Digest)
	return f
}

// Write writes an uncompressed bundle, panicking on error: fixtures are
// built from known-good parts.
func Write(images []bundle.Image, blobs Blobs, skipForeign bool) []byte {
	var buf bytes.Buffer
	if err := bundle.Write(context.Background(), &buf, images, blobs, bundle.WithSkipForeignLayers(skipForeign)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Entry is one tar entry, for editing archives.
type Entry struct {
	Hdr  tar.Header
	Data []byte
}

// Entries splits a tar into its entries.
func Entries(tarBytes []byte) []Entry {
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	var out []Entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			panic(err)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, Entry{Hdr: *h, Data: data})
	}
}

// Tar writes entries as a tar; regular files get their data's length.
func Tar(entries []Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Hdr
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
		_, _ = tw.Write(e.Data)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// Find returns the index of the entry named name, or -1.
func Find(entries []Entry, name string) int {
	for i, e := range entries {
		if e.Hdr.Name == name {
			return i
		}
	}
	return -1
}

// Reg is a regular file entry.
func Reg(name string, data []byte) Entry {
	return Entry{Hdr: tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}, Data: data}
}

// EditJSON decodes an entry's JSON into a generic value, lets edit change
// it and encodes it back.
func EditJSON(entries []Entry, name string, edit func(v any) any) []Entry {
	out := append([]Entry(nil), entries...)
	i := Find(out, name)
	var v any
	if err := json.Unmarshal(out[i].Data, &v); err != nil {
		panic(err)
	}
	data, _ := json.Marshal(edit(v))
	out[i].Data = data
	return out
}

// List makes a Docker manifest list of the images, plus a linux/arm64 entry
// that no bundle stores, as a multi-platform tag's list has children a
// bundle for one platform leaves out. Each image's SourceIndex is set to it.
func List(images ...*bundle.Image) *bundle.RawIndex {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.DockerManifestList}
	for _, img := range images {
		d := img.Descriptor
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform})
	}
	other := []byte("a manifest for another platform")
	idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: types.DockerManifestSchema2, Size: int64(len(other)), Digest: Hash(other),
		Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	raw, _ := json.MarshalIndent(idx, "", "   ")
	src := &bundle.RawIndex{Descriptor: v1.Descriptor{MediaType: idx.MediaType, Size: int64(len(raw)), Digest: Hash(raw)}, Manifest: raw}
	for _, img := range images {
		img.SourceIndex = src
	}
	return src
}
