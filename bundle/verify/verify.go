package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/internal/inflate"
	"github.com/rancher/ferry/registry/platform"
)

// DefaultMaxSpill bounds the compressed layer bytes Archive keeps in temp
// files at once (see WithSpill): a few large layers, and far less than the
// archives it reads.
const DefaultMaxSpill = inflate.DefaultMaxSpill

// ErrDecompressionBomb is a layer that expands past the bound WithMaxExpansion
// sets; a diff-id check reports it.
var ErrDecompressionBomb = inflate.ErrDecompressionBomb

// Severity says whether a failed check fails the verification.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Check is one thing Archive looked at: which check, on which entry and
// image, and its result. A failed check has a Severity, and names what was
// expected against what was found where that applies.
type Check struct {
	Name     string   `json:"check"`
	Entry    string   `json:"entry,omitempty"`
	Image    string   `json:"image,omitempty"`
	OK       bool     `json:"ok"`
	Severity Severity `json:"severity,omitempty"`
	Expected string   `json:"expected,omitempty"`
	Found    string   `json:"found,omitempty"`
	Message  string   `json:"message,omitempty"`
}

func (c Check) String() string {
	s := c.Name
	if c.Entry != "" {
		s += " " + c.Entry
	}
	if c.Image != "" {
		s += " (" + c.Image + ")"
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	if c.Expected != "" || c.Found != "" {
		s += fmt.Sprintf(": expected %s, found %s", orNone(c.Expected), orNone(c.Found))
	}
	return EscapeControls(s)
}

// EscapeControls writes control characters (newlines, carriage returns,
// escapes) as Go escapes, so that an entry name cannot break a text report
// into lines of its own or drive the terminal.
func EscapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// ImageResult is one image of the archive, described as `ferry list`
// describes it, and whether all its checks passed.
type ImageResult struct {
	bundle.ImageInfo
	Config string `json:"config,omitempty"`
	OK     bool   `json:"ok"`
	// entries are the archive entries this image is made of, so a failed
	// check on a shared layer marks every image that uses it.
	entries []string
}

// Report is the outcome of Archive.
type Report struct {
	Mode          Mode               `json:"mode"`
	Compression   bundle.Compression `json:"compression"`
	Format        string             `json:"format"`
	MetadataFirst bool               `json:"metadataFirst"`
	Entries       int                `json:"entries"`
	Bytes         int64              `json:"decompressedBytes"`
	Images        []ImageResult      `json:"images"`
	Checks        []Check            `json:"checks"`
}

// OK is true when no check of error severity failed.
func (r *Report) OK() bool { return r.Count(SeverityError) == 0 }

// Count returns how many checks of severity s failed.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK && c.Severity == s {
			n++
		}
	}
	return n
}

// Problems returns the failed checks, errors before warnings, in the order found.
func (r *Report) Problems() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Severity == SeverityError && out[j].Severity != SeverityError
	})
	return out
}

// ErrInvalidOption is returned by Archive for an option that cannot work.
var ErrInvalidOption = errors.New("invalid option")

// Option configures Archive. Options that can be wrong return an error,
// which Archive returns before reading anything.
type Option func(*options) error

type options struct {
	mode         Mode
	strict       bool
	allowExtra   bool
	jobs         int
	maxExpansion int64
	expected     []string
	exact        bool
	platform     *platform.Target
	spillDir     string
	maxSpill     int64
}

// Mode is how much of each layer Archive reads: what the check costs and
// what it proves.
type Mode string

const (
	// ModeFull checks everything ModeDigests does and decompresses every
	// gzip or zstd layer to check it against its config's diff_id: what a
	// loader checks when it unpacks the layer. Its cost is a decompression
	// of every layer, several times the CPU of the digest pass, spread over
	// WithJobs cores.
	ModeFull Mode = "full"
	// ModeDigests checks the tar structure, every blob's digest and size,
	// and the metadata (index.json, manifest.json, repositories, configs,
	// expected images and platforms), but does not decompress layers, so
	// compressed layers' diff_ids are not checked (an uncompressed layer's
	// diff_id is its digest, so it is). It costs one hash of the archive's
	// bytes, as `crane validate --fast` does for an image.
	ModeDigests Mode = "digests"
)

// WithMode sets what Archive checks: ModeFull (the default) or ModeDigests.
func WithMode(m Mode) Option {
	return func(o *options) error {
		if m != ModeFull && m != ModeDigests {
			return fmt.Errorf("%w: mode %q: use %q or %q", ErrInvalidOption, m, ModeFull, ModeDigests)
		}
		o.mode = m
		return nil
	}
}

// WithStrict makes an archive that is not metadata-first a failure rather
// than a warning.
func WithStrict(strict bool) Option {
	return func(o *options) error { o.strict = strict; return nil }
}

// WithAllowExtra accepts entries nothing refers to.
func WithAllowExtra(allow bool) Option {
	return func(o *options) error { o.allowExtra = allow; return nil }
}

// WithJobs sets how many layers are decompressed and hashed at once (≥ 1).
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: jobs %d: use 1 or more", ErrInvalidOption, n)
		}
		o.jobs = n
		return nil
	}
}

// WithMaxExpansion bounds decompression work: a layer may expand to
// max(256 MiB, ratio × its compressed size) before Archive stops and reports
// it as a likely decompression bomb. The default ratio is 100.
func WithMaxExpansion(ratio int64) Option {
	return func(o *options) error {
		if ratio < 1 {
			return fmt.Errorf("%w: max expansion %d: use 1 or more", ErrInvalidOption, ratio)
		}
		o.maxExpansion = ratio
		return nil
	}
}

// WithSpill sets where a layer whose decompression falls behind the read
// is spilled, so that the next layers can be decompressed meanwhile ("" is
// os.TempDir()), and how many bytes may be spilled at once (default
// DefaultMaxSpill; 0 never spills, which decompresses one large layer at
// a time). The files are removed as each layer is done, and on every
// return. A plain tar that can be read at any offset (a file) is never
// spilled: each worker reads its own layers.
func WithSpill(dir string, maxBytes int64) Option {
	return func(o *options) error {
		if maxBytes < 0 {
			return fmt.Errorf("%w: max spill %d: use 0 (never spill) or more", ErrInvalidOption, maxBytes)
		}
		o.spillDir, o.maxSpill = dir, maxBytes
		return nil
	}
}

// WithExpectedImages requires every reference to name an image in the
// archive (compared after normalisation, so rancher/x:1 is
// index.docker.io/rancher/x:1). A repo:tag@digest reference matches the
// image's manifest digest, or the digest of the stored list it was chosen
// from (Image.SourceIndex). With exact, images not listed fail too.
func WithExpectedImages(refs []string, exact bool) Option {
	return func(o *options) error { o.expected, o.exact = refs, exact; return nil }
}

// WithPlatform requires every image's platform, as its config states it, to
// fit t by the rules ferry bundle selects images with (platform.Target.Check):
// a Windows image of another build fails, and one without os.version (built
// FROM scratch) is a warning, since it may or may not suit the build.
func WithPlatform(t platform.Target) Option {
	return func(o *options) error { o.platform = &t; return nil }
}

// Archive reads an image archive once, from start to end, and checks its
// structure, every blob's digest and size, every layer's diff_id, that
// index.json, manifest.json and repositories agree, and any expectations
// given. It accepts ferry bundles, OCI layouts, docker save archives (old and
// new) and crane tarballs, compressed with zstd, gzip or not at all.
//
// Layers are decompressed in parallel (WithJobs). When r is a plain tar
// that is also an io.ReaderAt and io.Seeker (an *os.File), each worker reads
// its layers by offset while the tar reader seeks past them, and r's offset
// is left where it was; otherwise layers behind are spilled (WithSpill).
//
// Problems with the archive are Checks in the Report; the error is only for
// reading failures of r itself or of a spill file, and cancellation.
func Archive(ctx context.Context, r io.Reader, opts ...Option) (*Report, error) {
	v, err := run(ctx, r, opts)
	if v == nil {
		return nil, err
	}
	return v.rep, err
}

func run(ctx context.Context, r io.Reader, opts []Option) (*verifier, error) {
	o := options{mode: ModeFull, jobs: runtime.GOMAXPROCS(0), maxExpansion: 100, maxSpill: DefaultMaxSpill}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidOption)
	}
	v := newVerifier(o)
	src := &sourceReader{r: r}
	fatal := v.scan(ctx, src)
	if err := src.failure(); err != nil {
		return v, fmt.Errorf("reading archive: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return v, err
	}
	if v.localErr != nil {
		return v, v.localErr
	}
	if fatal {
		v.reportDamagedBlobs()
	} else {
		v.crossCheck()
	}
	v.finish()
	return v, nil
}

// sourceReader remembers the input's own errors, which are I/O failures,
// apart from the decoding errors that are problems with the archive. ReadAt
// is called by several workers at once.
type sourceReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.note(err)
	return n, err
}

// ReadAt is only called when r is an io.ReaderAt (see seekableTar).
func (s *sourceReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.(io.ReaderAt).ReadAt(p, off)
	s.note(err)
	return n, err
}

func (s *sourceReader) note(err error) {
	if err == nil || errors.Is(err, io.EOF) {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *sourceReader) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
