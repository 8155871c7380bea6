package admission

import (
	"context"
	"runtime"
	rtmetrics "runtime/metrics"
	"time"
)

// schedLatencies is the runtime metric the CPU door reads: how long
// goroutines waited to run once runnable.
const schedLatencies = "/sched/latencies:seconds"

// schedWatch computes, window by window, a quantile of the time goroutines
// waited for a CPU, from the runtime's cumulative histogram.
type schedWatch struct {
	sample []rtmetrics.Sample
	prev   []uint64
}

func newSchedWatch() *schedWatch {
	return &schedWatch{sample: []rtmetrics.Sample{{Name: schedLatencies}}}
}

// quantile returns the q-quantile of the waits since the previous call,
// and how many waits there were.
func (s *schedWatch) quantile(q float64) (time.Duration, uint64) {
	rtmetrics.Read(s.sample)
	if s.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return 0, 0
	}
	h := s.sample[0].Value.Float64Histogram()
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - s.prev[i]
	}
	var seen uint64
	want := uint64(q * float64(total))
	at := 0.0
	for i, c := range h.Counts {
		seen += c - s.prev[i]
		if seen > want {
			at = max(0, h.Buckets[i]) // the bucket's lower bound (the first may be -Inf)
			break
		}
	}
	copy(s.prev, h.Counts)
	return time.Duration(at * float64(time.Second)), total
}

// WatchCPU is the gateway's second door, until ctx ends. The adaptive
// limit sees queueing after admission; but when the gateway's own CPU is
// saturated, requests queue before it (as runnable goroutines waiting to
// read and parse them) and every admitted call looks fast. So every
// window, when the 99th percentile of scheduling waits passes target, the
// limit is cut (see limiter.saturated); otherwise it may grow again.
func (c *Controller) WatchCPU(ctx context.Context, target, window time.Duration) {
	w := newSchedWatch()
	w.quantile(0.99) // start from now
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A handful of waits says nothing: an idle gateway is not hot.
		if p99, n := w.quantile(0.99); n >= 100 && p99 > target {
			c.limit.saturated(c.inflight.Load())
		} else {
			c.limit.cool()
		}
	}
}

// cpuFloor is the lowest limit the CPU door sets: enough calls in flight
// to keep every core busy, when each waits on a worker for a while.
func cpuFloor() int64 { return int64(8 * runtime.GOMAXPROCS(0)) }
