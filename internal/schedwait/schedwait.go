// Package schedwait reads, window by window, how long runnable goroutines
// waited for a core: the runtime's cumulative /sched/latencies histogram
// (which samples one wait in 8), less what it held at the previous
// reading. The gateway's CPU door reads its 99th percentile; the
// adaptive cores (internal/procs) the share of waits beyond 250 us.
package schedwait

import (
	rtmetrics "runtime/metrics"
	"time"
)

// metric is the runtime's histogram of scheduling waits.
const metric = "/sched/latencies:seconds"

// Watch reads the waits since its previous Next. Its zero value works; the
// first Next returns every wait since the process started.
type Watch struct {
	sample [1]rtmetrics.Sample
	prev   []uint64
	win    Window
}

// Window is the waits of one window: Counts[i] of them in the bucket from
// Buckets[i] to Buckets[i+1] seconds (the first bound may be -Inf).
type Window struct {
	Counts  []uint64
	Buckets []float64
}

// Next returns the waits since the previous call. The Window is valid
// until the next call.
func (w *Watch) Next() Window {
	w.sample[0].Name = metric
	rtmetrics.Read(w.sample[:])
	if w.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return Window{}
	}
	h := w.sample[0].Value.Float64Histogram()
	if len(w.prev) != len(h.Counts) {
		w.prev = make([]uint64, len(h.Counts))
		w.win.Counts = make([]uint64, len(h.Counts))
	}
	for i, c := range h.Counts {
		w.win.Counts[i] = c - w.prev[i]
	}
	copy(w.prev, h.Counts)
	w.win.Buckets = h.Buckets
	return w.win
}

// Total is the number of waits in the window.
func (win Window) Total() uint64 {
	var n uint64
	for _, c := range win.Counts {
		n += c
	}
	return n
}

// Over is the number of waits in buckets that start at d or beyond.
func (win Window) Over(d time.Duration) uint64 {
	var n uint64
	for i, c := range win.Counts {
		if win.Buckets[i] >= d.Seconds() {
			n += c
		}
	}
	return n
}

// Quantile is the lower bound of the bucket holding the q-quantile of the
// waits (0 for an empty window).
func (win Window) Quantile(q float64) time.Duration {
	want := uint64(q * float64(win.Total()))
	var seen uint64
	for i, c := range win.Counts {
		if seen += c; seen > want {
			return time.Duration(max(0, win.Buckets[i]) * float64(time.Second))
		}
	}
	return 0
}
