package verifytest

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"strings"
	"time"

	"github.com/rancher/ferry/bundle"
)

// CraneArchive lays an image out as go-containerregistry's tarball.Write
// does: config named sha256:<hex>, layers <hex>.tar.gz, manifest.json last.
func CraneArchive(img bundle.Image, blobs Blobs) []byte {
	m, err := img.Parsed()
	if err != nil {
		panic(err)
	}
	cfgName := m.Config.Digest.String()
	entries := []Entry{Reg(cfgName, img.Config)}
	var layers []string
	for _, l := range m.Layers {
		name := l.Digest.Hex + ".tar.gz"
		layers = append(layers, name)
		entries = append(entries, Reg(name, blobs[l.Digest]))
	}
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{img.Name}, "Layers": layers}})
	return Tar(append(entries, Reg(bundle.ManifestFile, manifest)))
}

// LegacyArchive lays an image out as docker save did before Docker 25:
// <id>/{VERSION,json,layer.tar} with uncompressed layers, <hex>.json
// config, manifest.json and repositories. Layer ids are 1, 2, … in hex.
func LegacyArchive(img bundle.Image, rawLayers [][]byte) []byte {
	m, err := img.Parsed()
	if err != nil {
		panic(err)
	}
	var entries []Entry
	var layers []string
	var top string
	for i, raw := range rawLayers {
		id := fmt.Sprintf("%064x", i+1)
		dir := Entry{Hdr: tar.Header{Name: id + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}}
		v1json, _ := json.Marshal(map[string]any{"id": id, "created": "1970-01-01T00:00:00Z"})
		entries = append(entries, dir, Reg(id+"/VERSION", []byte("1.0")), Reg(id+"/json", v1json), Reg(id+"/layer.tar", raw))
		layers = append(layers, id+"/layer.tar")
		top = id
	}
	repo := strings.TrimPrefix(strings.TrimSuffix(img.Name, ":"+img.Tag), "docker.io/")
	return dockerArchive(entries, img, m, repo, layers, top)
}

// dockerArchive adds what every docker-archive ends with: the config as
// <hex>.json, then manifest.json and repositories naming the top layer id.
func dockerArchive(entries []Entry, img bundle.Image, m *v1.Manifest, repo string, layers []string, top string) []byte {
	cfgName := m.Config.Digest.Hex + ".json"
	entries = append(entries, Reg(cfgName, img.Config))
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{repo + ":" + img.Tag}, "Layers": layers}})
	repos, _ := json.Marshal(map[string]map[string]string{repo: {img.Tag: top}})
	return Tar(append(entries, Reg(bundle.ManifestFile, manifest), Reg(bundle.RepositoriesFile, repos)))
}

// SkopeoArchive lays an image out as skopeo and podman write a
// docker-archive: layers as <diff_id hex>.tar, referenced from
// manifest.json, and legacy <id>/layer.tar symlinks to them, with
// repositories naming the top legacy id.
func SkopeoArchive(img bundle.Image, rawLayers [][]byte) []byte {
	m, err := img.Parsed()
	if err != nil {
		panic(err)
	}
	var entries []Entry
	var layers []string
	var top string
	for i, raw := range rawLayers {
		name := Hash(raw).Hex + ".tar"
		id := fmt.Sprintf("%064x", 100+i)
		v1json, _ := json.Marshal(map[string]any{"id": id, "os": "windows"})
		entries = append(entries, Reg(name, raw),
			Entry{Hdr: tar.Header{Name: id + "/layer.tar", Linkname: "../" + name, Typeflag: tar.TypeSymlink, Mode: 0o777}},
			Reg(id+"/VERSION", []byte("1.0")), Reg(id+"/json", v1json))
		layers = append(layers, name)
		top = id
	}
	return dockerArchive(entries, img, m, strings.TrimSuffix(img.Name, ":"+img.Tag), layers, top)
}
