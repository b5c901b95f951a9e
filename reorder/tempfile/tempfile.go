// Package tempfile names ferry's temp files so that a later run can tell
// a dead writer's from a live one's: Create puts the writing process's
// machine, PID and start time in the name, and Sweep removes the files of
// processes that are gone (killed with -9, or by a power loss), which
// nothing else would ever clean up.
package tempfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrBadPattern is returned for a pattern without exactly one "*", or
// with a path separator.
var ErrBadPattern = errors.New("bad temp file pattern")

// Beside is the pattern of temp files written next to path and renamed
// over it when complete: ".NAME.tmp-*".
func Beside(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// Create creates a temp file in dir like os.CreateTemp, its name the
// pattern with the "*" replaced by the writing process's tag and a random
// part. The tag (machine, PID and the process's start time) lets
// Sweep, in a later run, remove the files of writers that died
// without cleaning up (kill -9, power loss) and keep those of live ones.
func Create(dir, pattern string) (*os.File, error) {
	if strings.Count(pattern, "*") != 1 || strings.ContainsAny(pattern, `/\`) {
		return nil, fmt.Errorf("%w: %q", ErrBadPattern, pattern)
	}
	prefix, suffix, _ := strings.Cut(pattern, "*")
	return os.CreateTemp(dir, prefix+selfTag()+".*"+suffix)
}

// Sweep removes the files in dir that Create made with pattern
// for a process that no longer runs, and returns their names. Files of
// live processes, of other machines or PID namespaces, and any name
// Create did not make are left alone. Where the system cannot tell
// (no /proc), nothing is removed.
func Sweep(dir, pattern string) ([]string, error) {
	prefix, suffix, ok := strings.Cut(pattern, "*")
	if !ok || strings.Contains(suffix, "*") || strings.ContainsAny(pattern, `/\`) {
		return nil, fmt.Errorf("%w: %q", ErrBadPattern, pattern)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) || len(n) < len(prefix)+len(suffix) {
			continue
		}
		if !ownerGone(n[len(prefix) : len(n)-len(suffix)]) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err == nil {
			removed = append(removed, n)
		}
	}
	return removed, nil
}

// The tag is MACHINE-PID-START: MACHINE a hash of the host name, boot and
// PID namespace (so a container sharing the directory is never judged by
// this one's process table), START the process's start time in clock
// ticks since boot (so a reused PID is told apart).
var selfTag = sync.OnceValue(func() string {
	start, _ := startTime(os.Getpid())
	return fmt.Sprintf("%s-%d-%d", machine(), os.Getpid(), start)
})

var machine = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	h := sha256.Sum256([]byte(host + "\x00" + machineID()))
	return hex.EncodeToString(h[:4])
})

// ownerGone parses "MACHINE-PID-START.RANDOM" and reports whether that
// process is known to be gone.
func ownerGone(s string) bool {
	tag, _, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	parts := strings.Split(tag, "-")
	if len(parts) != 3 || parts[0] != machine() {
		return false
	}
	pid, err1 := strconv.Atoi(parts[1])
	start, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || start == 0 {
		return false
	}
	now, alive, known := processStart(pid)
	if !known {
		return false
	}
	return !alive || now != start
}
