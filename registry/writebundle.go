package registry

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

// BundleFile is one bundle for WriteBundles to write: the images resolved
// for Target, at Path.
type BundleFile struct {
	Path   string
	Target platform.Target
	// Writer, when set, receives the bundle instead of a file at Path,
	// which then only names it in errors and results ("-" for stdout).
	// Its compression must be given with WithCompression.
	Writer io.Writer
}

// WithCache sets the blob cache WriteBundles fetches layers into; without
// it, the cache at DefaultCacheDir.
func WithCache(c *Cache) PullOption {
	return func(o *pullOptions) error {
		if c == nil {
			return fmt.Errorf("%w: nil cache", ErrInvalidArgument)
		}
		o.cache = c
		return nil
	}
}

// WithCompression sets how WriteBundles compresses every bundle; without
// it, each file's extension decides (.tar.zst, .tar.gz, .tar).
func WithCompression(c bundle.Compression) PullOption {
	return func(o *pullOptions) error {
		if err := bundle.CheckCompression(c, 0); err != nil {
			return err
		}
		o.compression = c
		return nil
	}
}

// WithLevel sets the compression level of the bundles WriteBundles writes;
// 0, the default, is the codec's own. WriteBundles checks it against each
// bundle's compression before fetching anything.
func WithLevel(level int) PullOption {
	return func(o *pullOptions) error { o.level = level; return nil }
}

// WithBundleWritten calls fn after each bundle file is in place.
func WithBundleWritten(fn func(path string, images int)) PullOption {
	return func(o *pullOptions) error { o.written = fn; return nil }
}

// WriteBundle writes one bundle file at path holding refs resolved for t.
// See WriteBundles.
func (c *Client) WriteBundle(ctx context.Context, path string, refs []string, t platform.Target, opts ...PullOption) error {
	_, err := c.WriteBundles(ctx, refs, []BundleFile{{Path: path, Target: t}}, opts...)
	return err
}

// WriteBundles writes one bundle file per entry of files, each holding refs
// resolved for its target, in one run: every distinct layer is fetched once
// into the cache, jobs at a time (see WithJobs), and each bundle is written
// while its layers download. Output directories are created and every path
// and compression checked before anything is fetched. Each file appears
// whole or not at all (see bundle.WriteFileAtomic). It returns the bytes
// downloaded.
func (c *Client) WriteBundles(ctx context.Context, refs []string, files []BundleFile, opts ...PullOption) (int64, error) {
	o, err := makePullOptions(opts)
	if err != nil {
		return 0, err
	}
	comps, err := prepareOutputs(files, o)
	if err != nil {
		return 0, err
	}
	cache := o.cache
	if cache == nil {
		if cache, err = NewCache(DefaultCacheDir()); err != nil {
			return 0, err
		}
	}
	targets := make([]platform.Target, len(files))
	for i, f := range files {
		targets[i] = f.Target
	}
	write := func(ctx context.Context, i int, images []bundle.Image, blobs bundle.Blobs) error {
		path := files[i].Path
		spillDir := "" // a stream to a writer: os.TempDir()
		if files[i].Writer == nil {
			spillDir = filepath.Dir(path)
		}
		var sum *summer
		writeTo := func(ctx context.Context, w io.Writer) error {
			if o.result != nil {
				sum = newSummer(w)
				w = sum
			}
			return bundle.Write(ctx, w, images, blobs, bundle.WithCompression(comps[i], o.level),
				bundle.WithSkipForeignLayers(o.skipForeign), bundle.WithBlobsVerified(true), bundle.WithSpillDir(spillDir))
		}
		var err error
		if files[i].Writer != nil {
			err = writeTo(ctx, files[i].Writer)
		} else {
			err = bundle.WriteFileAtomic(ctx, path, writeTo)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if o.written != nil {
			o.written(path, len(images))
		}
		if o.result != nil {
			o.result(sum.result(path, comps[i], images))
		}
		return nil
	}
	return c.Pull(ctx, refs, targets, cache, write, opts...)
}

// CheckBundleFiles runs the checks WriteBundles makes before fetching
// anything (see prepareOutputs), so that a program can refuse a mistake
// before it even builds a client or a cache.
func CheckBundleFiles(files []BundleFile, opts ...PullOption) error {
	o, err := makePullOptions(opts)
	if err != nil {
		return err
	}
	_, err = prepareOutputs(files, o)
	return err
}

// prepareOutputs refuses what would fail only after a long download: two
// targets writing one file, a path that is a directory, an unknown
// extension or level. It creates output directories, as release scripts
// expect of dist/. It returns each file's compression.
func prepareOutputs(files []BundleFile, o pullOptions) ([]bundle.Compression, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no bundle files to write", ErrInvalidArgument)
	}
	comps := make([]bundle.Compression, len(files))
	seen := map[string]bool{}
	for i, f := range files {
		clean := filepath.Clean(f.Path)
		if f.Path == "" || seen[clean] {
			return nil, fmt.Errorf("%w: output %q: every bundle needs a path of its own", ErrInvalidArgument, f.Path)
		}
		seen[clean] = true
		comp := o.compression
		if f.Writer != nil && comp == "" {
			return nil, fmt.Errorf("%w: %s: a bundle written to a stream needs WithCompression", ErrInvalidArgument, f.Path)
		}
		if comp == "" {
			var err error
			if comp, err = bundle.CompressionFromPath(f.Path); err != nil {
				return nil, err
			}
		}
		if err := bundle.CheckCompression(comp, o.level); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		comps[i] = comp
		if f.Writer != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return nil, fmt.Errorf("output directory for %s: %w", f.Path, err)
		}
		if fi, err := os.Stat(f.Path); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%w: output %s is a directory: give a file name", ErrInvalidArgument, f.Path)
		}
		if err := probeWritable(filepath.Dir(f.Path)); err != nil {
			return nil, fmt.Errorf("%w: output %s: its directory is not writable: %w", ErrInvalidArgument, f.Path, err)
		}
	}
	return comps, nil
}

// probeWritable creates and removes a file in dir, since a bundle is
// written beside its path and renamed into place: a directory that refuses
// that would otherwise fail only once everything has been downloaded.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".ferry-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
