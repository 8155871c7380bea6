package gateway

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/schema"
)

// The estimate a gateway admits by: a group of two replicas of 4 handlers
// at 20 ms a call serves 400 calls a second.
func TestGroupLoadEstimate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newGroupLoads("gw1", 100*time.Millisecond, 50*time.Millisecond)
	replica := func(id string, busy int, backlog int64, at time.Time) {
		l.heard(&schema.LoadReport{Group: "g", Instance: id, At: at.UnixNano(), Concurrency: 4, Busy: busy,
			Backlog: backlog, ServiceNs: int64(20 * time.Millisecond)}, at)
	}
	// Nothing heard: admitted, nothing expected.
	if wait, over := l.admit("g", 0, t0); wait != 0 || over != 0 {
		t.Fatalf("a group nobody reported: wait %s, over %s", wait, over)
	}
	// Idle replicas: no wait.
	replica("a", 1, -1, t0)
	replica("b", 0, -1, t0)
	if wait, over := l.admit("g", 0, t0); wait != 0 || over != 0 {
		t.Errorf("idle group: wait %s, over %s", wait, over)
	}
	// A backlog of 27 envelopes (8 in handlers, 19 waiting): a new call
	// is 20th in line for 8 handlers at 20 ms: 50 ms. Admitted (not over
	// the 50 ms target); the next, 51st... is not.
	replica("a", 4, 27, t0)
	replica("b", 4, schema.BacklogUnknown, t0) // its reading failed: the estimate goes on
	wait, over := l.admit("g", 0, t0)
	if wait != 50*time.Millisecond || over != 0 {
		t.Errorf("backlog 27: wait %s, over %s; want 50ms admitted", wait, over)
	}
	if _, over := l.admit("g", 0, t0); over != 2500*time.Microsecond {
		t.Errorf("backlog 28: over %s, want 2.5ms", over)
	}
	// A tool's own target wins.
	if wait, over := l.admit("g", 200*time.Millisecond, t0); over != 0 || wait != 52500*time.Microsecond {
		t.Errorf("tool target 200ms: wait %s, over %s", wait, over)
	}
	// 10 ms later the handlers have served 4 calls: with the 2 admitted
	// here, 25 wait. Another gateway's report of one admission makes 26,
	// and at its rate (one in 100 ms) it admitted 0.1 more since: room
	// for 1 more.
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw2", At: t0.UnixNano(), Admitted: 1}, t0)
	t10 := t0.Add(10 * time.Millisecond)
	admitted := 0
	for l.admitOK("g", t10) {
		admitted++
	}
	if admitted != 1 {
		t.Errorf("10 ms later, with one admitted by gw2: %d admitted, want 1", admitted)
	}
	// Our own reports are not counted twice.
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw1", At: t0.UnixNano(), Admitted: 100}, t0)
	if l.admitOK("g", t10) {
		t.Error("admitted after its own report came back")
	}
	// A new reading replaces what was estimated: the backlog is gone.
	replica("a", 4, 7, t10)
	if wait, over := l.admit("g", 0, t10); wait != 0 || over != 0 {
		t.Errorf("backlog 7 for 8 handlers: wait %s, over %s", wait, over)
	}
	// Replicas not heard of for five intervals are forgotten: no
	// estimate, every call admitted.
	replica("a", 4, 1000, t10)
	late := t10.Add(600 * time.Millisecond)
	if wait, over := l.admit("g", 0, late); wait != 0 || over != 0 {
		t.Errorf("reports 600ms old: wait %s, over %s", wait, over)
	}
	// The group's own target from its replicas' reports.
	l.heard(&schema.LoadReport{Group: "g", Instance: "c", At: late.UnixNano(), Concurrency: 1, Busy: 1, Backlog: 3,
		ServiceNs: int64(100 * time.Millisecond), QueueTargetNs: int64(time.Second)}, late)
	if wait, over := l.admit("g", 0, late); over != 0 || wait != 300*time.Millisecond {
		t.Errorf("group target 1s, backlog 3 of 100 ms for 1 handler: wait %s, over %s", wait, over)
	}
}

// What the other gateways admit between their reports is counted at the
// rate of their last report, for one report interval at most.
func TestGroupLoadOtherGateways(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newGroupLoads("gw1", 100*time.Millisecond, time.Second)
	// One handler at 10 ms a call, a backlog of 10: a new call waits
	// 100 ms.
	l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: t0.UnixNano(), Concurrency: 1, Busy: 1, Backlog: 10,
		ServiceNs: int64(10 * time.Millisecond)}, t0)
	gl := l.group("g")
	if wait, _, _ := gl.estimate(t0, l.interval); wait != 100*time.Millisecond {
		t.Fatalf("backlog 10: wait %s, want 100ms", wait)
	}
	// gw2 admitted 20 in its last interval (200 a second), gw3 10; both
	// reports arrive 20 ms after the reading.
	t20 := t0.Add(20 * time.Millisecond)
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw2", At: t20.UnixNano(), Admitted: 20}, t20)
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw3", At: t20.UnixNano(), Admitted: 10}, t20)
	for _, c := range []struct {
		after time.Duration
		want  time.Duration // (10 + 30 reported + unheard - served) x 10 ms
	}{
		{20 * time.Millisecond, 380 * time.Millisecond},  // 30 reported, 2 served
		{70 * time.Millisecond, 480 * time.Millisecond},  // 15 unheard, 7 served
		{120 * time.Millisecond, 580 * time.Millisecond}, // 30 unheard (one interval), 12 served
		{170 * time.Millisecond, 530 * time.Millisecond}, // still 30 unheard: a late report
		{230 * time.Millisecond, 170 * time.Millisecond}, // no report for two intervals: admitting nothing
	} {
		wait, _, _ := gl.estimate(t0.Add(c.after), l.interval)
		if d := wait - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("%s after the reading: wait %s, want %s", c.after, wait, c.want)
		}
	}
}

// A gateway asked for shareMin calls lately takes the others to admit,
// between two readings, what it admits times their share; below that it
// counts what they report. (The group serves 1,000 calls in recentTau,
// more than anyone asks for here: the shares are what each asks for.)
func TestGroupLoadShare(t *testing.T) {
	t0 := time.Unix(1000, 0)
	reading := func(l *groupLoads, at time.Time) {
		l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: at.UnixNano(), Concurrency: 1, Backlog: 0,
			ServiceNs: int64(time.Millisecond)}, at)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6 }

	l := newGroupLoads("gw1", 100*time.Millisecond, time.Hour)
	reading(l, t0)
	for range 20 {
		if !l.admitOK("g", t0) {
			t.Fatal("refused under a target of an hour")
		}
	}
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw2", At: t0.UnixNano(), Admitted: 40}, t0)
	reading(l, t0) // a new reading: nothing admitted since
	gl := l.group("g")
	if n, _ := gl.othersSince(t0, l.interval, 1000); n != 0 {
		t.Errorf("at the reading: others %v, want 0", n)
	}
	for range 5 {
		l.admitOK("g", t0)
	}
	// 5 of ours since the reading, the others admitting 40 to our 20 (21
	// with these 5 decayed at once: 25): 5 x 40/25.
	if n, _ := gl.othersSince(t0, l.interval, 1000); !near(n, 8) {
		t.Errorf("5 admitted since the reading, others at 40 to our 25: others %v, want 8", n)
	}

	// Fewer than shareMin of ours: what gw2 reported, and at its rate
	// until its next report.
	l = newGroupLoads("gw1", 100*time.Millisecond, time.Hour)
	reading(l, t0)
	for range 5 {
		l.admitOK("g", t0)
	}
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw2", At: t0.UnixNano(), Admitted: 10}, t0)
	if n, _ := l.group("g").othersSince(t0.Add(50*time.Millisecond), l.interval, 1000); !near(n, 15) {
		t.Errorf("5 of ours, 10 reported by gw2 50 ms ago: others %v, want 15", n)
	}
}

// admitOK reports whether a call to group is admitted at now.
func (l *groupLoads) admitOK(group string, now time.Time) bool {
	_, over := l.admit(group, 0, now)
	return over == 0
}

// A report that does not parse, or names no group or no sender, is
// refused.
func TestUnmarshalLoadReport(t *testing.T) {
	for _, b := range []string{`{`, `{"group":"g"}`, `{"instance":"i"}`, `{"group":"g","instance":"i","gateway":"w"}`} {
		if _, err := schema.UnmarshalLoadReport([]byte(b)); err == nil {
			t.Errorf("%s: no error", b)
		}
	}
	r, err := schema.UnmarshalLoadReport([]byte(`{"group":"g","gateway":"w","admitted":3}`))
	if err != nil || r.Admitted != 3 {
		t.Errorf("gateway report: %+v, %v", r, err)
	}
}

// The estimate learns its bias from what admitted calls saw: the 90th
// percentile of their waits over what was expected; calls expected to
// wait under 5 ms teach nothing, nor redeliveries.
func TestGroupLoadBias(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newGroupLoads("gw1", 100*time.Millisecond, time.Second)
	l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: t0.UnixNano(), Concurrency: 1, Busy: 1, Backlog: 2,
		ServiceNs: int64(10 * time.Millisecond)}, t0)
	before, _ := l.admit("g", 0, t0) // 2 ahead of it, one handler: 20 ms
	if before != 20*time.Millisecond {
		t.Fatalf("first estimate %s, want 20ms", before)
	}
	for range 20 {
		l.observe("g", 4*time.Millisecond, time.Second)    // under the floor
		l.observe("g", 10*time.Millisecond, 4*time.Second) // a redelivery, not the estimate's error
	}
	// Calls whose waits spread evenly over 1 to 20 ms, against an
	// unbiased estimate of 10 ms: nine in ten wait 18 ms or less, so the
	// bias settles near 1.8.
	gl := l.group("g")
	for i := range 5000 {
		l.observe("g", time.Duration(float64(10*time.Millisecond)*gl.bias), time.Duration(1+i%20)*time.Millisecond)
	}
	l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: t0.UnixNano(), Concurrency: 1, Busy: 1, Backlog: 2,
		ServiceNs: int64(10 * time.Millisecond)}, t0)
	after, _ := l.admit("g", 0, t0)
	if after < 33*time.Millisecond || after > 40*time.Millisecond {
		t.Errorf("after calls that waited up to twice the estimate: estimate %s, want about 36ms (1.8 x 20ms)", after)
	}
	// Calls that all wait less than estimated bring the bias down, not
	// below biasMin.
	for range 5000 {
		l.observe("g", time.Duration(float64(10*time.Millisecond)*gl.bias), time.Millisecond)
	}
	if gl.bias != biasMin {
		t.Errorf("bias %v after calls that all waited less, want %v", gl.bias, biasMin)
	}
	var none *groupLoads
	none.observe("g", time.Second, time.Second) // admission per group off: nothing to learn
}

// TestGroupCollector: the metrics of admission per group count what admit
// decided, and give the wait a call to the group would be expected to have
// when scraped.
func TestGroupCollector(t *testing.T) {
	t0 := time.Now()
	l := newGroupLoads("gw1", 100*time.Millisecond, 50*time.Millisecond)
	// 8 handlers at 20 ms, all busy, 19 more waiting: a new call is
	// expected to wait 50 ms (admitted), the next 52.5 ms (refused).
	l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: t0.UnixNano(), Concurrency: 8, Busy: 8,
		Backlog: 27, ServiceNs: int64(20 * time.Millisecond)}, t0)
	if _, over := l.admit("g", 0, t0); over != 0 {
		t.Fatalf("first call refused (over %s)", over)
	}
	if _, over := l.admit("g", 0, t0); over == 0 {
		t.Fatalf("second call admitted")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newGroupCollector(l))
	fams, err := reg.Gather()
	elapsed := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if len(got) != 3 || got["mcpstream_gateway_group_calls_total,group=g,outcome=admitted"] != 1 ||
		got["mcpstream_gateway_group_calls_total,group=g,outcome=refused"] != 1 {
		t.Errorf("series %v, want one call admitted and one refused", got)
	}
	// 28 ahead now (the reading's 27 and the call admitted), less what
	// the handlers served since t0: 8 calls each 20 ms, 20 ms of wait.
	wait := time.Duration(got["mcpstream_gateway_group_expected_wait_seconds,group=g"] * float64(time.Second))
	if want := 52500 * time.Microsecond; wait > want || wait < want-elapsed-time.Microsecond {
		t.Errorf("expected wait %s, want %s less at most the %s since the reading", wait, want, elapsed)
	}
}
