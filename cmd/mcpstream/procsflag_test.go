package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// TestProcsFlag: --adapt-procs starts the adapter, which takes the idle
// process to one core, and its stop gives every core back; false, or
// GOMAXPROCS in the environment, starts none.
func TestProcsFlag(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one core: nothing to adapt")
	}
	all := runtime.GOMAXPROCS(0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	noEnv := func(string) (string, bool) { return "", false }

	if (&procsFlag{adapt: false}).enabled(log, noEnv) {
		t.Error("--adapt-procs=false adapts")
	}
	if (&procsFlag{adapt: true}).enabled(log, func(k string) (string, bool) { return "2", k == "GOMAXPROCS" }) {
		t.Error("GOMAXPROCS=2 in the environment, and the cores are adapted")
	}
	if !(&procsFlag{adapt: true}).enabled(log, func(k string) (string, bool) { return "", k == "GOMAXPROCS" }) {
		t.Error("an empty GOMAXPROCS counts as set")
	}

	stop := (&procsFlag{adapt: true}).start(log, noEnv)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.GOMAXPROCS(0) != 1 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("idle process on %d cores with --adapt-procs, want 1", runtime.GOMAXPROCS(0))
		}
		time.Sleep(time.Millisecond) // polling: no event says GOMAXPROCS changed
	}
	stop()
	if n := runtime.GOMAXPROCS(0); n != all {
		t.Fatalf("GOMAXPROCS %d after stop, want every core (%d)", n, all)
	}
}
