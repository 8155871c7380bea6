package admission

import (
	"sync"
	"sync/atomic"
	"time"
)

// limiter adapts the gateway's in-flight limit to the queueing it sees, so
// that an overload is refused at the door instead of queued.
//
// The first signal is a call's overhead: its latency less the time its
// handler ran (workers report it), i.e. the time spent queueing and in
// transit. Every window, if even the fastest call of the window waited
// longer than the target, a standing queue has formed: the limit drops to
// 3/4 of the window's peak in-flight count, but not below 256 on this
// signal. Otherwise it grows by 1/8, up to the configured maximum. Slow
// tools do not count against it: their run time is not overhead.
//
// The second, with a CPU queue target, is the gateway's CPU (see
// Controller.WatchCPU): while it is saturated the limit halves each
// window, down to cpuFloor, and does not grow.
type limiter struct {
	limit atomic.Int64 // read on every admission, without the lock

	mu          sync.Mutex
	min, max    int64
	cpuMin      int64
	hot         bool // the CPU was saturated in the last window
	target      time.Duration
	window      time.Duration
	windowStart time.Time
	minOverhead time.Duration
	peak        int64
	samples     int
}

// floorLimit is where the limit starts and the lowest it goes: a sudden
// overload meets a limit of 256, not 10,000, and a slow machine (a race
// build, a noisy neighbour) never sheds moderate, legitimate concurrency.
const floorLimit = 256

func newLimiter(max int64, target, window time.Duration) *limiter {
	l := &limiter{min: min(floorLimit, max), max: max, cpuMin: min(cpuFloor(), max), target: target, window: window, windowStart: time.Now()}
	l.limit.Store(min(floorLimit, max))
	return l
}

// allow reports whether one more call may go in with inflight already in.
func (l *limiter) allow(inflight int64) bool { return inflight < l.limit.Load() }

// observe records a finished call's overhead with the in-flight count seen
// when it was admitted.
func (l *limiter) observe(overhead time.Duration, inflight int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.samples == 0 || overhead < l.minOverhead {
		l.minOverhead = overhead
	}
	l.peak = max(l.peak, inflight)
	l.samples++
	if now.Sub(l.windowStart) < l.window {
		return
	}
	cur := l.limit.Load()
	switch {
	case l.minOverhead > l.target:
		// Never raised by this rule, when the CPU door set it lower.
		cur = max(min(l.min, cur), min(cur, l.peak)*3/4)
	case !l.hot:
		cur = min(l.max, cur+max(8, cur/8))
	}
	l.limit.Store(cur)
	l.windowStart, l.samples, l.peak = now, 0, 0
}

// saturated halves the limit, or the calls in flight (the more of now
// and the window's peak) when fewer, down to cpuMin; the limit does not
// grow until cool is called.
func (l *limiter) saturated(inflight int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.limit.Load()
	l.limit.Store(max(min(l.cpuMin, cur), min(cur, max(inflight, l.peak))/2))
	l.hot = true
}

// cool lets the limit grow again: the CPU has room.
func (l *limiter) cool() {
	l.mu.Lock()
	l.hot = false
	l.mu.Unlock()
}
