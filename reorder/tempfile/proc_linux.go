package tempfile

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot.
func startTime(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// processStart reports a process's start time, whether it runs, and
// whether that could be found out at all.
func processStart(pid int) (start uint64, alive, known bool) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return 0, false, false
	}
	start, ok := startTime(pid)
	if !ok {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return 0, false, errors.Is(err, os.ErrNotExist)
	}
	return start, true, true
}

func machineID() string {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return strings.TrimSpace(string(boot)) + "\x00" + ns
}
