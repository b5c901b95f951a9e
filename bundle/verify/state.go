package verify

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/bundle/verify/internal/inflate"
)

// verifier is the state of one Archive call: the entries seen in the pass,
// then the images the metadata describes, and the report being written.
type verifier struct {
	o         options
	rep       *Report
	entries   map[string]*vEntry
	order     []*vEntry
	firstBulk string            // the first entry that is not metadata
	outOfOrd  string            // the first metadata entry after firstBulk
	current   string            // the entry being read, for errors
	seek      *bundle.OffsetTar // the archive, when read by offset
	localErr  error             // a spill file failed us
	spilled   inflate.Stats

	hasIndex   bool
	hasDocker  bool
	images     []*vImage
	byManifest map[v1.Hash]*vImage
	diffSeen   map[string]bool
	legacy     map[string]*vEntry   // see legacyDirs
	legacyOf   map[*vEntry][]string // legacy ids by the layer they hold
	byName     map[string]*vImage   // see imageNamed
	byConfig   map[v1.Hash][]*vImage
	problems   int
}

func newVerifier(o options) *verifier {
	return &verifier{o: o, rep: &Report{Mode: o.mode, MetadataFirst: true}, entries: map[string]*vEntry{},
		byManifest: map[v1.Hash]*vImage{}, diffSeen: map[string]bool{}}
}

// maxProblems caps the failed checks kept: past it a report says nothing
// new, and a hostile archive could make millions.
const maxProblems = 10000

func (v *verifier) add(c Check) {
	if !c.OK {
		if v.problems++; v.problems > maxProblems {
			if v.problems == maxProblems+1 {
				v.rep.Checks = append(v.rep.Checks, Check{Name: "limit", Severity: SeverityError,
					Message: fmt.Sprintf("more than %d problems; the rest are not listed", maxProblems)})
			}
			return
		}
	}
	v.rep.Checks = append(v.rep.Checks, c)
}

func (v *verifier) fail(name, entry, msg string, args ...any) {
	v.add(Check{Name: name, Entry: entry, Severity: SeverityError, Message: fmt.Sprintf(msg, args...)})
}

func (v *verifier) warn(name, entry, msg string, args ...any) {
	v.add(Check{Name: name, Entry: entry, Severity: SeverityWarning, Message: fmt.Sprintf(msg, args...)})
}

func (v *verifier) pass(name, entry, msg string, args ...any) {
	v.add(Check{Name: name, Entry: entry, OK: true, Severity: SeverityError, Message: fmt.Sprintf(msg, args...)})
}
