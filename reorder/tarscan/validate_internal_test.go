package tarscan

import (
	"strings"
	"testing"
)

// FuzzHasDotDot checks hasDotDot against the definition it replaces: an
// element "..", with both separators.
func FuzzHasDotDot(f *testing.F) {
	for _, s := range []string{"", "..", "a/..", `a\..\b`, "../a", "a/../b", "a/..b", "..a/b", "a//..", `a\`, "/", "...", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := false
		for _, elem := range strings.FieldsFunc(name, isSeparator) {
			want = want || elem == ".."
		}
		if got := hasDotDot(name); got != want {
			t.Fatalf("hasDotDot(%q) = %v, want %v", name, got, want)
		}
	})
}
