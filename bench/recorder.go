package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1µs to 60s
// with 3 significant digits; larger values are recorded as 60s.
const (
	histMin     = 1
	histMax     = int64(60 * time.Second / time.Microsecond)
	histSigFigs = 3
)

// recorder counts one session's measured calls. Latencies of successful
// calls go into hist and those of refusals (see [IsRefusal]) into refused;
// failed calls are counted by kind. In an open loop, where latency runs
// from a call's due time, lag holds how long each call waited in the
// driver before its send, and sent and refusedSent the latencies from the
// send.
type recorder struct {
	mu                sync.Mutex
	hist, refused     *hdrhistogram.Histogram
	lag               *hdrhistogram.Histogram
	sent, refusedSent *hdrhistogram.Histogram
	calls             int64
	ok                int64
	errors            map[string]int
}

func newRecorder() *recorder {
	return &recorder{hist: newHistogram(), refused: newHistogram(), lag: newHistogram(),
		sent: newHistogram(), refusedSent: newHistogram(), errors: make(map[string]int)}
}

// IsRefusal reports whether an error kind is the server's explicit refusal
// to take more work: HTTP 503 or 429, or the JSON-RPC error -32000 that
// overloaded MCP servers answer with. Their latency is how fast overload is
// announced, and is reported apart from that of served calls.
func IsRefusal(kind string) bool {
	return kind == KindHTTP503 || kind == KindHTTP429 || kind == KindOverloaded
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// record counts one call that took lat and failed with kind ("" for
// success).
func (r *recorder) record(lat time.Duration, kind string) {
	r.mu.Lock()
	r.recordLocked(lat, kind)
	r.mu.Unlock()
}

// recordOpen counts one open-loop call that took lat from its due time,
// of which lag before its send, and failed with kind ("" for success).
func (r *recorder) recordOpen(lat, lag time.Duration, kind string) {
	r.mu.Lock()
	r.recordLocked(lat, kind)
	_ = r.lag.RecordValue(micros(lag))
	switch {
	case kind == "":
		_ = r.sent.RecordValue(micros(lat - lag))
	case IsRefusal(kind):
		_ = r.refusedSent.RecordValue(micros(lat - lag))
	}
	r.mu.Unlock()
}

func (r *recorder) recordLocked(lat time.Duration, kind string) {
	us := micros(lat)
	r.calls++
	switch {
	case kind == "":
		r.ok++
		_ = r.hist.RecordValue(us)
	case IsRefusal(kind):
		_ = r.refused.RecordValue(us)
		r.errors[kind]++
	default:
		r.errors[kind]++
	}
}

// micros is d in whole microseconds within the histograms' range.
func micros(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), histMin), histMax)
}

// tally is the sum of several recorders.
type tally struct {
	hist, refused, lag, sent, refusedSent *hdrhistogram.Histogram
	calls                                 int64
	ok                                    int64
	errors                                map[string]int
}

// merge adds up recorders.
func merge(rs []*recorder) tally {
	t := tally{hist: newHistogram(), refused: newHistogram(), lag: newHistogram(), sent: newHistogram(),
		refusedSent: newHistogram(), errors: make(map[string]int)}
	for _, r := range rs {
		r.mu.Lock()
		t.hist.Merge(r.hist)
		t.refused.Merge(r.refused)
		t.lag.Merge(r.lag)
		t.sent.Merge(r.sent)
		t.refusedSent.Merge(r.refusedSent)
		t.calls += r.calls
		t.ok += r.ok
		for k, n := range r.errors {
			t.errors[k] += n
		}
		r.mu.Unlock()
	}
	return t
}

// quantile is the latency at percentile p (0..100) of h.
func quantile(h *hdrhistogram.Histogram, p float64) time.Duration {
	if h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.ValueAtQuantile(p)) * time.Microsecond
}
