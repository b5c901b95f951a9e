package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/bundle/verify/verifytest"
	"github.com/rancher/ferry/reorder"
	"github.com/rancher/ferry/reorder/tarscan"
)

// sentinels are tarscan's verdicts, each with the check verify reports it as.
var sentinels = []struct {
	err   error
	check string
}{
	{tarscan.ErrTruncated, "archive"},
	{tarscan.ErrMalformed, "archive"},
	{tarscan.ErrUnsafePath, "path"},
	{tarscan.ErrUnsafeLink, "link"},
	{tarscan.ErrUnsupportedType, "type"},
	{tarscan.ErrDuplicate, "duplicate"},
	{tarscan.ErrLimit, "limit"},
}

// reader is one of ferry's ways to read an archive, reduced to its verdict.
type reader struct {
	name string
	read func(t *testing.T, tc verifytest.Case) error
}

var readers = []reader{
	{"list", func(_ *testing.T, tc verifytest.Case) error {
		_, err := bundle.ReadContents(context.Background(), bytes.NewBuffer(tc.Data))
		return err
	}},
	{"open", func(_ *testing.T, tc verifytest.Case) error {
		a, err := bundle.Open(context.Background(), bytes.NewReader(tc.Data), int64(len(tc.Data)))
		if err != nil {
			return err
		}
		return a.Close()
	}},
	{"verify", func(t *testing.T, tc verifytest.Case) error { return verdictOfVerify(t, tc, verify.ModeFull) }},
	// The digests-only mode skips decompressing layers, not any structural
	// check: its verdicts are the full mode's.
	{"verify --digests-only", func(t *testing.T, tc verifytest.Case) error { return verdictOfVerify(t, tc, verify.ModeDigests) }},
	{"reorder", func(t *testing.T, tc verifytest.Case) error {
		rc, _, err := bundle.Decompress(bytes.NewReader(tc.Data))
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = reorder.Reorder(context.Background(), io.Discard, rc, reorder.WithRank(bundle.HeaderRank), reorder.WithSpillDir(t.TempDir()))
		return err
	}},
}

// errVerify stands for a report with failed checks; it wraps the sentinels
// of the failed checks that name one. verify's "archive" and "limit" checks
// also cover faults tarscan does not judge (a codec's checksum, a zstd
// window, a report's problem cap), so they count only where the case expects
// that verdict.
var errVerify = errors.New("verify found problems")

func verdictOfVerify(_ *testing.T, tc verifytest.Case, mode verify.Mode) error {
	rep, err := verify.Archive(context.Background(), bytes.NewReader(tc.Data), verify.WithMode(mode), verify.WithStrict(tc.Strict), verify.WithAllowExtra(tc.AllowExt))
	if err != nil || rep.OK() {
		return err
	}
	failed := map[string]bool{}
	for _, c := range rep.Problems() {
		if c.Severity == verify.SeverityError {
			failed[c.Name] = true
		}
	}
	var errs []error
	for _, s := range sentinels {
		ambiguous := s.check == "archive" || s.check == "limit"
		if failed[s.check] && (!ambiguous || checkOf(tc.Reject) == s.check) {
			if ambiguous {
				errs = append(errs, tc.Reject)
				break
			}
			errs = append(errs, s.err)
		}
	}
	first := rep.Problems()[0]
	return fmt.Errorf("%w (%w), first of %d: %s", errVerify, errors.Join(errs...), len(rep.Problems()), first)
}

func checkOf(err error) string {
	for _, s := range sentinels {
		if err != nil && err == s.err {
			return s.check
		}
	}
	return ""
}

// TestReadersConform runs the whole corpus through every reader: list
// (bundle.ReadContents, a stream), bundle.Open (an io.ReaderAt), verify
// and reorder. Valid archives must be accepted by all; an archive labelled
// with a tarscan sentinel must be refused by all with that sentinel (verify:
// by its check of that sentinel); and no reader may refuse any other case
// for a structural reason the corpus does not label.
func TestReadersConform(t *testing.T) {
	cases := verifytest.Corpus()
	if n := countRejected(cases); n < 25 {
		t.Fatalf("%d cases labelled with a structural verdict", n)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			for _, r := range readers {
				err := r.read(t, tc)
				switch {
				case tc.WantOK && err != nil:
					t.Errorf("%s refuses a valid archive: %v", r.name, err)
				case tc.Reject != nil && !errors.Is(err, tc.Reject):
					t.Errorf("%s: got %v, want %v", r.name, err, tc.Reject)
				case tc.Reject == nil && structural(err) != nil:
					t.Errorf("%s refuses it as %v, which the corpus does not: %v", r.name, structural(err), err)
				}
			}
		})
	}
}

func countRejected(cases []verifytest.Case) int {
	n := 0
	for _, tc := range cases {
		if tc.Reject != nil {
			n++
		}
	}
	return n
}

// structural returns the tarscan sentinel err carries, if any.
func structural(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.err
		}
	}
	return nil
}
