package admission

import (
	"context"
	"runtime"
	"time"

	"github.com/mcpstream/mcpstream/internal/schedwait"
)

// WatchCPU is the gateway's second door, until ctx ends. The adaptive
// limit sees queueing after admission; but when the gateway's own CPU is
// saturated, requests queue before it (as runnable goroutines waiting to
// read and parse them) and every admitted call looks fast. So every
// window, when the 99th percentile of scheduling waits passes target, the
// limit is cut (see limiter.saturated); otherwise it may grow again.
func (c *Controller) WatchCPU(ctx context.Context, target, window time.Duration) {
	var w schedwait.Watch
	w.Next() // start from now
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A handful of waits says nothing: an idle gateway is not hot.
		if win := w.Next(); win.Total() >= 100 && win.Quantile(0.99) > target {
			c.limit.saturated(c.inflight.Load())
		} else {
			c.limit.cool()
		}
	}
}

// cpuFloor is the lowest limit the CPU door sets: enough calls in flight
// to keep every core busy, when each waits on a worker for a while.
func cpuFloor() int64 { return int64(8 * runtime.GOMAXPROCS(0)) }
