package gateway

import (
	"testing"
	"time"

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
	// here, 25 wait. Another gateway's report of one admission makes 26:
	// room for 2 more.
	l.heard(&schema.LoadReport{Group: "g", Gateway: "gw2", At: t0.UnixNano(), Admitted: 1}, t0)
	t10 := t0.Add(10 * time.Millisecond)
	admitted := 0
	for l.admitOK("g", t10) {
		admitted++
	}
	if admitted != 2 {
		t.Errorf("10 ms later, with one admitted by gw2: %d admitted, want 2", admitted)
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
