package admission

import (
	"testing"
	"time"
)

func TestLimiterShedsOnStandingQueueAndRecovers(t *testing.T) {
	const window = 100 * time.Millisecond
	l := newLimiter(10_000, 10*time.Millisecond, window)
	now := time.Now()
	// tick is one window of calls: three inside it, the last one closing it.
	tick := func(overhead time.Duration, inflight int64) {
		for range 3 {
			l.observe(overhead, inflight, now.Add(window/2))
		}
		now = now.Add(window)
		l.observe(overhead, inflight, now)
	}
	if !l.allow(255) || l.allow(256) {
		t.Fatal("the limit starts at 256")
	}
	// Fast calls: the limit grows to the maximum.
	for range 40 {
		tick(2*time.Millisecond, 500)
	}
	if got := l.limit.Load(); got != 10_000 {
		t.Fatalf("limit %d after fast calls, want 10000", got)
	}
	// Even the fastest call queued for 30ms: a standing queue. The limit
	// falls to 3/4 of the peak in flight in one window, then keeps falling.
	tick(30*time.Millisecond, 800)
	if got := l.limit.Load(); got != 600 {
		t.Fatalf("limit %d after one congested window at 800 in flight, want 600", got)
	}
	if l.allow(600) || !l.allow(599) {
		t.Fatal("admission does not follow the limit")
	}
	for range 40 {
		tick(30*time.Millisecond, 800)
	}
	if got := l.limit.Load(); got != 256 {
		t.Fatalf("limit %d under a lasting queue, want the floor 256", got)
	}
	// A slow machine with moderate load (100 in flight, every call slow)
	// never sheds it.
	for range 40 {
		tick(50*time.Millisecond, 100)
	}
	if !l.allow(255) {
		t.Fatal("moderate concurrency refused on a slow machine")
	}
	// The queue drains: the limit grows back, up to the maximum.
	for range 200 {
		tick(time.Millisecond, 10)
	}
	if got := l.limit.Load(); got != 10_000 {
		t.Fatalf("limit %d after recovery, want 10000", got)
	}
}

// TestLimiterCPUDoor: while the CPU is saturated the limit halves from
// the calls in flight down to the CPU floor, fast calls do not raise it,
// and the overhead rule does not lift it back to 256; once the CPU cools,
// fast calls raise it again.
func TestLimiterCPUDoor(t *testing.T) {
	const window = 100 * time.Millisecond
	l := newLimiter(10_000, 10*time.Millisecond, window)
	floor := cpuFloor()
	now := time.Now()
	tick := func(overhead time.Duration, inflight int64) {
		now = now.Add(window)
		l.observe(overhead, inflight, now)
	}
	l.saturated(100)
	if got := l.limit.Load(); got != 50 {
		t.Fatalf("limit %d after one saturated window at 100 in flight, want 50", got)
	}
	for range 10 {
		l.saturated(100)
	}
	if got := l.limit.Load(); got != floor {
		t.Fatalf("limit %d under lasting saturation, want the CPU floor %d", got, floor)
	}
	tick(time.Millisecond, 5) // fast, but the CPU is still hot
	if got := l.limit.Load(); got != floor {
		t.Fatalf("limit %d grew while the CPU was saturated", got)
	}
	tick(30*time.Millisecond, 5) // a queue after admission too
	if got := l.limit.Load(); got != floor {
		t.Fatalf("limit %d: the overhead rule moved a CPU-lowered limit", got)
	}
	l.cool()
	for range 20 {
		tick(time.Millisecond, 5)
	}
	if got := l.limit.Load(); got <= 256 {
		t.Fatalf("limit %d after the CPU cooled, want it grown past 256", got)
	}
}
