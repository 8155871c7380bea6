//go:build unix

package gateway

import "syscall"

// defaultMaxConns is Config.MaxConns's default: three quarters of the
// open-file limit (Go raises the soft limit to the hard one at start),
// leaving the rest for NATS, logs and the like; at least 64.
func defaultMaxConns() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 10_000
	}
	n := lim.Cur / 4 * 3
	if n > 1<<30 { // RLIM_INFINITY
		n = 1 << 30
	}
	return max(64, int(n))
}
