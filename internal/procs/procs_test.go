package procs

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestDecider: every core at once when waits are late; one fewer after a
// quiet Hold; a try that proves too few doubles Hold, up to maxHold; a
// reading with few waits decides nothing.
func TestDecider(t *testing.T) {
	d := (&Adapter{Max: 4, Hold: time.Second}).decider()
	tick := 100 * time.Millisecond
	if d.n != 1 || d.share != 0.08 {
		t.Fatalf("starts with %d cores, share %v; want 1 and the default 0.08", d.n, d.share)
	}
	if n := d.next(0.5, minWaits-1, tick); n != 1 {
		t.Fatalf("a reading of %d late waits gave %d cores; want it ignored", minWaits-1, n)
	}
	if n := d.next(0.09, 500, tick); n != 4 {
		t.Fatalf("9%% late waits gave %d cores, want every core (4)", n)
	}
	quiet := func(want int) {
		t.Helper()
		for range 9 { // 0.9 s: not yet Hold
			if n := d.next(0.01, 500, tick); n != want+1 {
				t.Fatalf("before Hold: %d cores, want %d", n, want+1)
			}
		}
		if n := d.next(0.01, 500, tick); n != want {
			t.Fatalf("after a quiet Hold: %d cores, want %d", n, want)
		}
	}
	quiet(3)
	if n := d.next(0.2, 500, tick); n != 4 || d.hold != 2*time.Second {
		t.Fatalf("a try proven too few: %d cores and hold %v; want 4 and 2s", n, d.hold)
	}
	for range 10 {
		d.next(0.2, 500, tick) // late at every core: no try, hold unchanged
	}
	if d.hold != 2*time.Second || d.trying {
		t.Fatalf("late at every core changed hold to %v (trying %v)", d.hold, d.trying)
	}
	for range 19 {
		d.next(0, 0, tick) // an idle process counts as quiet
	}
	if n := d.next(0, 0, tick); n != 3 {
		t.Fatalf("after 2s idle: %d cores, want 3", n)
	}
	for range 20 {
		d.next(0.01, 500, tick) // the try holds
	}
	if d.n != 2 || d.hold != 2*time.Second {
		t.Fatalf("after a try held for Hold: %d cores, hold %v; want the next try (2) and hold unchanged", d.n, d.hold)
	}
	for range 10 {
		d.trying = true
		d.next(1, 500, tick)
	}
	if d.hold != maxHold {
		t.Fatalf("hold after many failed tries = %v, want %v", d.hold, maxHold)
	}
}

// TestAdapter runs the Adapter on this process: one core while idle, both
// as soon as goroutines queue for one, one again once they stop, and the
// runtime's default when it ends.
func TestAdapter(t *testing.T) {
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // for a failure before the end
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Adapter{Max: 2, Interval: 50 * time.Millisecond, Hold: 200 * time.Millisecond}).Run(ctx)
	}()
	await := func(want int, what string) {
		t.Helper()
		testkit.Eventually(t, fmt.Sprintf("GOMAXPROCS %d %s", want, what), 10*time.Second, func() bool { return runtime.GOMAXPROCS(0) == want })
	}
	await(1, "idle")

	// 32 goroutines, each working 20 us at a time: on one core each waits
	// for the 31 others, beyond 250 us, and often enough for the runtime's
	// sample of waits (one in 8) to count.
	stop := testkit.Spin(32, 20*time.Microsecond)
	defer stop()
	await(2, "under load")
	stop()
	await(1, "idle again")

	cancel()
	<-done
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("after Run: GOMAXPROCS %d, want the runtime's default (%d)", n, def)
	}
}

// TestAdapterOneCore: with one core there is nothing to adapt, and Run
// returns at once.
func TestAdapterOneCore(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Adapter{Max: 1}).Run(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with Max 1 did not return")
	}
}
