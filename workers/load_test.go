package workers_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// A replica reports its load on its group's load subject: idle, no
// backlog measured; with every handler busy, the backlog read from its
// consumers (the calls in its handlers and those stored behind them);
// after calls ran, their mean run time.
func TestLoadReports(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	nc := h.connect()
	reports := make(chan *schema.LoadReport, 256)
	sub, err := nc.Subscribe(streams.LoadSubject("loaded"), func(m *nats.Msg) {
		if r, err := schema.UnmarshalLoadReport(m.Data); err == nil {
			select {
			case reports <- r:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	h.runOn(nc, testGroup("loaded", p), workers.Options{Instance: "r1", Concurrency: 2, LoadInterval: 20 * time.Millisecond,
		QueueTarget: 70 * time.Millisecond})
	next := func(what string, ok func(*schema.LoadReport) bool) *schema.LoadReport {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-reports:
				if ok(r) {
					return r
				}
			case <-deadline:
				t.Fatalf("no load report %s in 10s", what)
				return nil
			}
		}
	}
	idle := next("from the idle replica", func(r *schema.LoadReport) bool { return true })
	if idle.Group != "loaded" || idle.Instance != "r1" || idle.Concurrency != 2 || idle.Busy != 0 || idle.Backlog != schema.BacklogNone ||
		idle.QueueTargetNs != int64(70*time.Millisecond) {
		t.Errorf("idle replica's report: %+v", idle)
	}
	// Two calls take both handlers; three more wait behind them.
	for range 5 {
		h.publish("loaded", h.envelope(h.key(), "block", map[string]any{}))
	}
	<-p.started
	<-p.started
	busy := next("with a backlog of 5", func(r *schema.LoadReport) bool { return r.Backlog == 5 })
	if busy.Busy != 2 {
		t.Errorf("saturated replica's report: %+v", busy)
	}
	close(p.release)
	ran := next("with a mean run time, idle again", func(r *schema.LoadReport) bool {
		return r.ServiceNs > 0 && r.Busy == 0 && r.Backlog == schema.BacklogNone
	})
	t.Logf("after the calls: %+v", ran)
}
