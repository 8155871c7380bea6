package workers

import (
	"testing"
	"time"
)

// TestRenewDue: a running handler is acknowledged in progress (and its
// claim renewed) at every tick, though ticks come a little more or less
// than the interval apart; a handler that started within half an interval
// of a tick waits for the next one.
func TestRenewDue(t *testing.T) {
	const every = 250 * time.Millisecond
	start := time.Unix(1_000_000, 0)
	since := start
	tick := start
	for i, jitter := range []time.Duration{-3, 2, -1, 0, -50 * time.Microsecond, 7, -2} {
		tick = tick.Add(every + jitter)
		if !renewDue(tick, since, every) {
			t.Fatalf("tick %d, %s after the last renewal: not renewed", i, tick.Sub(since))
		}
		since = tick
	}
	if renewDue(start.Add(every/2-time.Nanosecond), start, every) {
		t.Error("renewed less than half an interval after the handler started")
	}
	if !renewDue(start.Add(every/2), start, every) {
		t.Error("not renewed half an interval after the handler started")
	}
}
