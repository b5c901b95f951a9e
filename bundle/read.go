package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/reorder"
)

// ErrNotAnArchive is returned for input that is not a readable image tarball.
var ErrNotAnArchive = errors.New("not an image archive")

// Contents is what an archive's metadata says it holds.
type Contents struct {
	Compression Compression
	// Index is index.json, nil for archives without an OCI layout.
	Index *v1.IndexManifest
	// Docker is manifest.json, nil when absent.
	Docker []DockerManifest
	// Small holds the small JSON entries (manifests, configs) by name.
	Small map[string][]byte
	// Sizes holds every entry's size seen so far, by name.
	Sizes map[string]int64
	// MetadataFirst is false when a layer came before the metadata.
	MetadataFirst bool
	// Complete is true when the whole archive was read.
	Complete bool
	// BytesRead counts decompressed bytes consumed to learn the above.
	BytesRead int64
}

// DockerManifest is one entry of docker's manifest.json.
type DockerManifest = dockerManifest

// ReadContents reads an archive's metadata. For a metadata-first archive it
// stops at the first layer, so only the first frame is decompressed; for any
// other it reads to the end and reports MetadataFirst false.
func ReadContents(ctx context.Context, r io.Reader) (*Contents, error) {
	rc, comp, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAnArchive, err)
	}
	defer rc.Close()
	counted := &countingReader{r: rc}
	c := &Contents{Compression: comp, Small: map[string][]byte{}, Sizes: map[string]int64{}, MetadataFirst: true}
	c.Complete, err = c.scan(ctx, tar.NewReader(counted))
	c.BytesRead = counted.n
	if err != nil {
		return nil, err
	}
	if c.Index == nil && c.Docker == nil {
		return nil, fmt.Errorf("%w: no index.json or manifest.json", ErrNotAnArchive)
	}
	return c, nil
}

func (c *Contents) scan(ctx context.Context, tr *tar.Reader) (bool, error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if len(c.Sizes) == 0 {
				return true, fmt.Errorf("%w: empty archive", ErrNotAnArchive)
			}
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrNotAnArchive, err)
		}
		name := path.Clean(h.Name)
		c.Sizes[name] = h.Size
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		head, err := readHead(tr, h.Size)
		if err != nil {
			return false, fmt.Errorf("%w: reading %s: %v", ErrNotAnArchive, name, err)
		}
		if MetadataRank(name, h.Size, head) >= reorder.Bulk {
			// The first layer ends the metadata section; stop there if it
			// told us everything, else this archive is not metadata-first.
			if c.MetadataFirst && len(c.Missing()) == 0 {
				return false, nil
			}
			c.MetadataFirst = false
			continue
		}
		// MetadataRank only admits entries up to MaxSmallMetadata.
		rest, err := io.ReadAll(tr)
		if err != nil {
			return false, fmt.Errorf("%w: reading %s: %v", ErrNotAnArchive, name, err)
		}
		if err := c.keep(name, append(head, rest...)); err != nil {
			return false, err
		}
	}
}

// readHead reads the first bytes of an entry, enough to classify it
// without reading a layer.
func readHead(r io.Reader, size int64) ([]byte, error) {
	head := make([]byte, min(size, 512))
	_, err := io.ReadFull(r, head)
	return head, err
}

// Missing lists the manifests and configs that the archive's index.json and
// manifest.json name but that have not been read (yet).
func (c *Contents) Missing() []string {
	if c.Index == nil && c.Docker == nil {
		return []string{IndexFile + " or " + ManifestFile}
	}
	var missing []string
	need := func(name string) []byte {
		if data, ok := c.Small[name]; ok {
			return data
		}
		missing = append(missing, name)
		return nil
	}
	if c.Index != nil {
		for _, d := range c.Index.Manifests {
			if raw := need(BlobPath(d.Digest)); raw != nil && d.MediaType.IsImage() {
				if m, err := v1.ParseManifest(bytes.NewReader(raw)); err == nil {
					need(BlobPath(m.Config.Digest))
				}
			}
		}
	}
	for _, dm := range c.Docker {
		need(path.Clean(dm.Config))
	}
	return missing
}

func (c *Contents) keep(name string, data []byte) error {
	switch name {
	case IndexFile:
		var idx v1.IndexManifest
		if err := json.Unmarshal(data, &idx); err != nil {
			return fmt.Errorf("%w: index.json: %v", ErrNotAnArchive, err)
		}
		c.Index = &idx
	case ManifestFile:
		var dm []dockerManifest
		if err := json.Unmarshal(data, &dm); err != nil {
			return fmt.Errorf("%w: manifest.json: %v", ErrNotAnArchive, err)
		}
		c.Docker = dm
	default:
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			c.Small[name] = data
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
