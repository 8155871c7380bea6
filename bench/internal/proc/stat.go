package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS is the resident set size of process pid in bytes, from
// /proc/PID/status (Linux).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseRSS(string(b))
}

// parseRSS reads VmRSS from the text of /proc/PID/status.
func parseRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			k, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return k << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// OpenFiles is the number of file descriptors process pid holds open
// (files, sockets, pipes), the entries of /proc/PID/fd (Linux).
func OpenFiles(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("reading /proc/%d/fd: %w", pid, err)
	}
	return len(names), nil
}
