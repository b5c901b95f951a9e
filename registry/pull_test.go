package registry

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/rancher/ferry/bundle"
	"github.com/rancher/ferry/registry/platform"
)

// TestPullWritesEachTargetInOrder pulls three Windows versions: write sees
// them in order, each with one image per ref, and can read every layer.
func TestPullWritesEachTargetInOrder(t *testing.T) {
	host, c, _ := serveSample(t)
	cache, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	targets := []platform.Target{windows(t, "1809"), windows(t, "ltsc2022"), windows(t, "2025")}
	var seen []string
	write := func(ctx context.Context, i int, images []bundle.Image, blobs bundle.Blobs) error {
		seen = append(seen, images[0].Descriptor.Platform.OSVersion)
		return bundle.Write(ctx, io.Discard, images, blobs)
	}
	fetched, err := c.Pull(context.Background(), sampleSet.Refs(host), targets, cache, write)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != "10.0.17763.5458" || seen[2] != "10.0.26100.2894" || fetched == 0 {
		t.Fatalf("writes saw %v, fetched %d", seen, fetched)
	}
}

func TestPullStopsOnWriteError(t *testing.T) {
	host, c, _ := serveSample(t)
	cache, _ := NewCache(t.TempDir())
	boom := errors.New("disk full")
	calls := 0
	write := func(context.Context, int, []bundle.Image, bundle.Blobs) error { calls++; return boom }
	_, err := c.Pull(context.Background(), sampleSet.Refs(host), []platform.Target{windows(t, "1809"), windows(t, "2025")}, cache, write)
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d writes; want the write error after one", err, calls)
	}
}
