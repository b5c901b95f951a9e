// Command sizesinput writes a manifest-last image tarball of about a given
// size for the bench's "sizes" scenario, without a registry: gzip'd layers
// of random bytes, laid out as crane pull and go-containerregistry's
// tarball.Write lay them out (config "sha256:HEX", layers "HEX.tar.gz",
// manifest.json last), so ferry reorder and rke2's bsdtar passes see what
// they see in the core scenario, at any size.
//
//	sizesinput OUT BYTES
//
// The output is the same for the same BYTES (a fixed seed), so runs can be
// compared.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
)

const (
	layerSize     = 32 << 20 // uncompressed bytes per layer, at most
	layersPerImg  = 8
	minLayerBytes = 4 << 10
)

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: sizesinput OUT BYTES"))
	}
	size, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || size < 1 {
		fail(fmt.Errorf("bad size %q", os.Args[2]))
	}
	fail(write(os.Args[1], size))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizesinput:", err)
		os.Exit(1)
	}
}

// manifestEntry is one image of docker's manifest.json.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func write(out string, size int64) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rnd := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	// Random bytes do not compress: a layer's blob is about its content.
	per := min(int64(layerSize), max(size/layersPerImg, minLayerBytes))
	var (
		written  int64
		manifest []manifestEntry
		layer    bytes.Buffer
	)
	for img := 0; written < size; img++ {
		var e manifestEntry
		var diffIDs []string
		for l := 0; l < layersPerImg && written < size; l++ {
			n := min(per, max(size-written, minLayerBytes))
			diffID, err := gzipLayer(&layer, rnd, n, img, l)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(layer.Bytes())
			name := hex.EncodeToString(sum[:]) + ".tar.gz"
			if err := add(tw, name, layer.Bytes()); err != nil {
				return err
			}
			written += int64(layer.Len())
			e.Layers = append(e.Layers, name)
			diffIDs = append(diffIDs, diffID)
		}
		cfg, err := json.Marshal(map[string]any{
			"architecture": "amd64", "os": "linux",
			"config": map[string]any{"Cmd": []string{"/bin/true"}},
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(cfg)
		e.Config = "sha256:" + hex.EncodeToString(sum[:])
		if err := add(tw, e.Config, cfg); err != nil {
			return err
		}
		e.RepoTags = []string{fmt.Sprintf("example.com/sizes/image-%d:v1", img)}
		manifest = append(manifest, e)
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := add(tw, "manifest.json", m); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// gzipLayer puts into buf a gzip'd layer tar holding one file of n random
// bytes and returns the layer's diff_id.
func gzipLayer(buf *bytes.Buffer, rnd io.Reader, n int64, img, l int) (string, error) {
	buf.Reset()
	zw, err := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	hdr := &tar.Header{Name: fmt.Sprintf("data/%d-%d.bin", img, l), Mode: 0o644, Size: n, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", err
	}
	if _, err := io.CopyN(tw, rnd, n); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func add(tw *tar.Writer, name string, b []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}
