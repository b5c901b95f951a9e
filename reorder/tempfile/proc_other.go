//go:build !linux

package tempfile

// Without /proc a dead writer cannot be told from a live one, so
// SweepTemp removes nothing.
func startTime(int) (uint64, bool) { return 0, false }

func processStart(int) (uint64, bool, bool) { return 0, false, false }

func machineID() string { return "" }
