package faultproxy

import (
	"net/http/httptest"
	"testing"
)

// Faults follow the rate, and retries of one request draw independently:
// the same seed gives the same faults.
func TestDrawRateAndReplay(t *testing.T) {
	const n = 20000
	p := &Proxy{Rate: 0.3, Seed: 7}
	q := &Proxy{Rate: 0.3, Seed: 7}
	faults, runs, longest := 0, 0, 0
	for i := range n {
		r := httptest.NewRequest("GET", "/v2/x/manifests/t", nil)
		f := p.draw(r)
		if f != q.draw(r) {
			t.Fatalf("request %d: same seed, different fault", i)
		}
		if f != None {
			faults++
			runs++
			longest = max(longest, runs)
		} else {
			runs = 0
		}
	}
	if got := float64(faults) / n; got < 0.28 || got > 0.32 {
		t.Errorf("fault share %.3f, want 0.3", got)
	}
	if longest > 12 {
		t.Errorf("%d faults in a row on one request: retries are not independent", longest)
	}
}
