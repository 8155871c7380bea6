package workers_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/workers"
)

// sampleOf returns the value of the series of family name whose labels
// include labels (name, value pairs): a counter's or gauge's value, a
// histogram's sample count; 0 when there is none.
func sampleOf(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			switch {
			case !match:
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			default:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestWorkerMetrics: every delivery is counted once under its outcome (a
// result, a protocol error or a panic, an expired envelope, a redelivery
// that runs again, one answered from the result store), handlers are timed
// by kind and tool name (never an unknown name), and two groups in one
// process share the vectors on one registry.
func TestWorkerMetrics(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	reg := prometheus.NewRegistry()

	// Two envelopes a crashed worker held: one whose result was stored,
	// one that must run again.
	dup, again := h.keyFor(0), h.keyFor(1)
	h.storedReply(dup, "from the store")
	h.publish("met", h.envelope(dup, "count", map[string]any{}))
	h.takeWithoutAck("met", 0, dup)
	h.publish("met", h.envelope(again, "count", map[string]any{}))
	h.takeWithoutAck("met", 1, again)

	h.run(testGroup("met", p), workers.Options{Metrics: reg})
	h.run(testGroup("met2", newProbe()), workers.Options{Metrics: reg})
	if r := h.await(dup, 15*time.Second); !r.Cached {
		t.Errorf("%s answered without the store", dup)
	}
	if got := h.text(h.await(again, 15*time.Second)); got != "counted attempt 2" {
		t.Errorf("%s answered %q", again, got)
	}
	h.await(h.call("met", "echo", map[string]any{"text": "x"}), 10*time.Second)
	h.await(h.call("met", "echo", map[string]any{"text": "y"}), 10*time.Second)
	for _, tool := range []string{"fail", "perr", "panic", "no-such-tool"} {
		h.await(h.call("met", tool, map[string]any{}), 10*time.Second)
	}
	h.await(h.call("met2", "echo", map[string]any{"text": "x"}), 10*time.Second)
	expired := h.keyFor(0)
	env := h.envelope(expired, "count", map[string]any{})
	env.Deadline = time.Now().Add(-time.Second).UnixNano()
	h.waitAcked("met", 0, h.publish("met", env).Sequence)

	// A panic is answered before its delivery is counted, and a handler
	// goroutine is busy until it has acknowledged: wait for both.
	testkit.Eventually(t, "no handler busy and 3 errors counted", 10*time.Second, func() bool {
		busy := sampleOf(t, reg, "mcpstream_worker_handlers_busy", "group", "met")
		errs := sampleOf(t, reg, "mcpstream_worker_deliveries_total", "group", "met", "outcome", "error")
		return busy == 0 && errs == 3
	})
	for outcome, want := range map[string]float64{
		"ok":          3, // two echoes, and fail: a tool result with isError
		"error":       3, // perr, panic, the unknown tool
		"expired":     1,
		"redelivered": 1,
		"duplicate":   1,
		"drained":     0,
	} {
		if got := sampleOf(t, reg, "mcpstream_worker_deliveries_total", "group", "met", "outcome", outcome); got != want {
			t.Errorf("met deliveries %s = %v, want %v", outcome, got, want)
		}
	}
	if got := sampleOf(t, reg, "mcpstream_worker_deliveries_total", "group", "met2", "outcome", "ok"); got != 1 {
		t.Errorf("met2 deliveries ok = %v, want 1", got)
	}
	for tool, want := range map[string]float64{"echo": 2, "fail": 1, "perr": 1, "panic": 1, "count": 1} {
		if got := sampleOf(t, reg, "mcpstream_worker_handler_duration_seconds", "group", "met", "kind", "tool", "name", tool); got != want {
			t.Errorf("%s timed %v times, want %v", tool, got, want)
		}
	}
	// 6 outcomes x 2 groups; met's 5 tools and met2's echo; 2 groups.
	for name, n := range map[string]int{
		"mcpstream_worker_deliveries_total":         12,
		"mcpstream_worker_handler_duration_seconds": 6,
		"mcpstream_worker_handlers_busy":            2,
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != n {
			t.Errorf("%s: %d series (%v), want %d", name, got, err, n)
		}
	}
	if lint, err := testutil.GatherAndLint(reg); err != nil || len(lint) > 0 {
		t.Errorf("metric lint: %v %v", lint, err)
	}
	if n := sampleOf(t, reg, "mcpstream_worker_handler_duration_seconds", "name", "no-such-tool"); n != 0 {
		t.Errorf("an unknown tool's name became a label value")
	}
}
