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
	"github.com/rancher/ferry/reorder/tarscan"
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

	// parsed holds the image manifests of Small already decoded, by name.
	parsed map[string]*listManifest
}

// DockerManifest is one entry of docker's manifest.json.
type DockerManifest = dockerManifest

// ReadContents reads an archive stream to its end, checking every entry
// with the rules of reorder/tarscan and keeping only the metadata: the
// small JSON entries, at most tarscan.DefaultLimits.Buffered bytes in
// total. To learn what a file holds without reading it all, use Open.
func ReadContents(ctx context.Context, r io.Reader) (*Contents, error) {
	rc, comp, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAnArchive, err)
	}
	defer rc.Close()
	c := &Contents{Compression: comp, Small: map[string][]byte{}, Sizes: map[string]int64{}, MetadataFirst: true}
	scanner := tarscan.NewScanner(rc, -1, tarscan.Limits{})
	err = c.scan(ctx, scanner)
	c.BytesRead = scanner.Offset()
	if err != nil {
		return nil, err
	}
	if c.Index == nil && c.Docker == nil {
		return nil, fmt.Errorf("%w: no index.json or manifest.json", ErrNotAnArchive)
	}
	return c, nil
}

func (c *Contents) scan(ctx context.Context, s *tarscan.Scanner) error {
	layerSeen := false
	for {
		e, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotAnArchive, err)
		}
		c.Sizes[e.Name] = e.Size()
		if e.Header.Typeflag != tar.TypeReg {
			continue
		}
		head, err := readHead(s, e.Size())
		if err != nil {
			return fmt.Errorf("%w: reading %s: %w", ErrNotAnArchive, e.Name, err)
		}
		if MetadataRank(e.Name, e.Size(), head) >= reorder.Bulk {
			// A layer before the metadata is complete: not metadata-first.
			if !layerSeen && len(c.Missing()) > 0 {
				c.MetadataFirst = false
			}
			layerSeen = true
			continue
		}
		data, err := s.ReadAll(head)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotAnArchive, err)
		}
		if err := c.keep(e.Name, data); err != nil {
			return err
		}
	}
	if len(c.Sizes) == 0 {
		return fmt.Errorf("%w: empty archive", ErrNotAnArchive)
	}
	c.Complete = true
	return nil
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
			// The list an image was chosen from is metadata too.
			if h, err := v1.NewHash(d.Annotations[AnnotationSourceDigest]); err == nil {
				need(BlobPath(h))
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
			return fmt.Errorf("%w: index.json: %w", ErrNotAnArchive, err)
		}
		c.Index = &idx
	case ManifestFile:
		var dm []dockerManifest
		if err := json.Unmarshal(data, &dm); err != nil {
			return fmt.Errorf("%w: manifest.json: %w", ErrNotAnArchive, err)
		}
		c.Docker = dm
	default:
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			c.Small[name] = data
		}
	}
	return nil
}
