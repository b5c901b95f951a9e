package reorder

import (
	"archive/tar"
	"cmp"
	"math"
	"path"
	"slices"
)

// plan is the output order: metadata records sorted by rank (stable), then
// bulk records in their original order.
type plan struct {
	order     []record
	meta      int   // order[:meta] are metadata
	metaBytes int64 // their total size
	ordered   bool  // the input already had this order
}

func makePlan(recs []record) *plan {
	p := &plan{order: slices.Clone(recs), ordered: true}
	slices.SortStableFunc(p.order, func(a, b record) int { return cmp.Compare(a.rank, b.rank) })
	for i, r := range p.order {
		if r.meta() {
			p.meta++
			p.metaBytes += r.size()
		}
		if r.off != recs[i].off {
			p.ordered = false
		}
	}
	return p
}

// Entry is a tar entry as a RankFunc sees it, for IsOrdered.
type Entry struct {
	Header *tar.Header
	// Head is the first min(Header.Size, HeadSize) content bytes of a
	// regular file.
	Head []byte
}

// IsOrdered reports whether Reorder with rank would leave entries in the
// order given: ranks never decrease (ranks at or above Bulk count as equal).
// It applies the same hard link rule as Reorder, so an archive Reorder wrote
// is always ordered. It does not validate the entries.
func IsOrdered(entries []Entry, rank RankFunc) bool {
	ranks := make(map[string]int, len(entries))
	last := math.MinInt
	for _, e := range entries {
		r := min(rank(e.Header, e.Head), Bulk)
		if e.Header.Typeflag == tar.TypeLink {
			if t, ok := ranks[canonical(e.Header.Linkname)]; ok {
				r = max(r, t)
			}
		}
		if r < last {
			return false
		}
		last = r
		ranks[canonical(e.Header.Name)] = r
	}
	return true
}

// canonical is cleanPath without the safety checks, for IsOrdered.
func canonical(name string) string {
	return path.Clean(name)
}
