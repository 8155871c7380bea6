//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// lockKeyFile does not lock where flock(2) is missing: two runs of
// mcpstream apikey on one file at once may then lose one's change.
func lockKeyFile(string) (unlock func(), err error) { return func() {}, nil }
