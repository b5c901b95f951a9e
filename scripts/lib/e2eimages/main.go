// Command e2eimages writes image archives the end-to-end suites push, in
// formats no installed tool writes:
//
//	e2eimages crane ARCHIVE REF NAME OUT   # REF of a ferry bundle or any archive, as go-containerregistry's tarball.Write (crane save) writes it, named NAME
//	e2eimages layout DIR NAME LAYERS SIZE  # an OCI layout directory with one image of LAYERS random SIZE-byte layers, ref.name NAME
//	e2eimages push REPO COUNT JOBS         # COUNT small distinct images REPO-NNNNN:v1 pushed JOBS at a time; prints their references
package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rancher/ferry/bundle"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 6 && os.Args[1] == "crane":
		err = crane(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	case len(os.Args) == 6 && os.Args[1] == "layout":
		err = layout(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	case len(os.Args) == 5 && os.Args[1] == "push":
		err = pushMany(os.Args[2], os.Args[3], os.Args[4], os.Stdout)
	default:
		err = fmt.Errorf("usage: e2eimages crane ARCHIVE REF NAME OUT | layout DIR NAME LAYERS SIZE | push REPO COUNT JOBS")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2eimages:", err)
		os.Exit(1)
	}
}

func crane(archive, ref, newName, out string) error {
	a, err := bundle.OpenPath(context.Background(), archive)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := a.Image(r)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(newName)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return err
	}
	// The digest crane reports for the tarball: go-containerregistry
	// writes no manifest there, and computes it as it reads.
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		return err
	}
	h, err := back.Digest()
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}

// layout streams each layer to its blob while hashing it, so no layer is
// held in memory.
func layout(dir, imageName, layersArg, sizeArg string) error {
	layers, err := strconv.Atoi(layersArg)
	if err != nil {
		return err
	}
	size, err := strconv.ParseInt(sizeArg, 10, 64)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	cfg := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := range layers {
		d, err := writeLayer(dir, rnd, i, size)
		if err != nil {
			return err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d.Digest)
		m.Layers = append(m.Layers, d)
	}
	if m.Config, err = writeJSON(dir, cfg, types.OCIConfigJSON); err != nil {
		return err
	}
	md, err := writeJSON(dir, m, types.OCIManifestSchema1)
	if err != nil {
		return err
	}
	md.Annotations = map[string]string{bundle.AnnotationRefName: imageName}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{md}}
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// writeLayer writes an uncompressed layer of one file of random bytes.
func writeLayer(dir string, rnd *rand.Rand, i int, size int64) (v1.Descriptor, error) {
	tmp := filepath.Join(dir, "blobs", "sha256", "tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	tw := tar.NewWriter(cw)
	hdr := &tar.Header{Name: fmt.Sprintf("data/%d", i), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return v1.Descriptor{}, err
	}
	if _, err := io.CopyN(tw, rnd, size); err != nil {
		return v1.Descriptor{}, err
	}
	if err := tw.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	d := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: cw.n, Digest: digest(h)}
	return d, os.Rename(tmp, filepath.Join(dir, "blobs", "sha256", d.Digest.Hex))
}

func writeJSON(dir string, v any, mt types.MediaType) (v1.Descriptor, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h := sha256.New()
	h.Write(raw)
	d := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest(h)}
	return d, os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Hex), raw, 0o644)
}

func digest(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
