package tempfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A temp file whose writer died is swept; a live writer's, and names
// ferry did not make, are kept.
func TestSweepTempRemovesOnlyDeadWriters(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pattern := Beside(filepath.Join(dir, "out.tar.zst"))
	live, err := Create(dir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	live.Close()
	// A process that has exited: its PID and start time in a name.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	deadTag := strings.Replace(selfTag(), "-"+strconv.Itoa(os.Getpid())+"-", "-"+strconv.Itoa(cmd.Process.Pid)+"-", 1)
	dead := filepath.Join(dir, ".out.tar.zst.tmp-"+deadTag+".123")
	// The same PID as ours with another start time: a reused PID.
	start, _ := startTime(os.Getpid())
	reusedTag := strings.TrimSuffix(selfTag(), strconv.FormatUint(start, 10)) + strconv.FormatUint(start+1, 10)
	reused := filepath.Join(dir, ".out.tar.zst.tmp-"+reusedTag+".456")
	foreign := filepath.Join(dir, ".out.tar.zst.tmp-deadbeef-1-1.789") // another machine
	legacy := filepath.Join(dir, ".out.tar.zst.tmp-123456")            // before tags
	other := filepath.Join(dir, ".other.tmp-"+deadTag+".1")
	for _, p := range []string{dead, reused, foreign, legacy, other} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Sweep(dir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{filepath.Base(dead), filepath.Base(reused)}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, p := range []string{live.Name(), foreign, legacy, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}
