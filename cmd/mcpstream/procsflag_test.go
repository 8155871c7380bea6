package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
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
	defer stop() // stop is idempotent: this one is for a failure before the one below
	testkit.Eventually(t, "an idle process on one core with --adapt-procs", 10*time.Second, func() bool { return runtime.GOMAXPROCS(0) == 1 })
	stop()
	if n := runtime.GOMAXPROCS(0); n != all {
		t.Fatalf("GOMAXPROCS %d after stop, want every core (%d)", n, all)
	}
}
