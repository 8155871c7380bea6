package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

func TestRegistrationAndHeartbeats(t *testing.T) {
	h := newHarness(t)
	reg := registry(t, h)
	g := testGroup("reg", newProbe())
	h.run(g, workers.Options{Instance: "i1", Concurrency: 3})

	revs := map[string]uint64{}
	for _, name := range g.Tools() {
		e, err := reg.Get(h.ctx(), streams.ToolKey(name))
		if err != nil {
			t.Fatalf("tool %s not registered: %v", name, err)
		}
		var te schema.ToolEntry
		if err := json.Unmarshal(e.Value(), &te); err != nil {
			t.Fatalf("tool %s entry %s: %v", name, e.Value(), err)
		}
		if te.Name != name || te.Group != "reg" || len(te.Version) != 16 {
			t.Errorf("tool %s entry: name %q group %q version %q", name, te.Name, te.Group, te.Version)
		}
		var in struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(te.InputSchema, &in); err != nil || in.Type != "object" {
			t.Errorf("tool %s input schema %s", name, te.InputSchema)
		}
		revs[name] = e.Revision()
	}
	if len(revs) != 7 {
		t.Fatalf("group has %d tools, want 7", len(revs))
	}
	hbKey := streams.HeartbeatKey("reg", "i1")
	e, err := reg.Get(h.ctx(), hbKey)
	if err != nil {
		t.Fatalf("heartbeat %s: %v", hbKey, err)
	}
	var hb workers.Heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil {
		t.Fatal(err)
	}
	if hb.Group != "reg" || hb.Instance != "i1" || !slices.Equal(hb.Tools, g.Tools()) || hb.Concurrency != 3 ||
		hb.PID != os.Getpid() || hb.StartedAt.IsZero() {
		t.Errorf("heartbeat %+v", hb)
	}

	// A second replica with the same definitions rewrites nothing.
	_, stop2 := h.run(testGroup("reg", newProbe()), workers.Options{Instance: "i2"})
	for name, rev := range revs {
		e, err := reg.Get(h.ctx(), streams.ToolKey(name))
		if err != nil {
			t.Fatal(err)
		}
		if e.Revision() != rev {
			t.Errorf("tool %s rewritten by an identical replica: revision %d -> %d", name, rev, e.Revision())
		}
	}
	if _, err := reg.Get(h.ctx(), streams.HeartbeatKey("reg", "i2")); err != nil {
		t.Errorf("second replica's heartbeat: %v", err)
	}

	// Stopping a replica removes its heartbeat (and only its own).
	removed := watchUntilRemoved(t, h, reg, streams.HeartbeatKey("reg", "i2"))
	if err := stop2(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatal("no delete or purge of the stopped replica's heartbeat")
	}
	if _, err := reg.Get(h.ctx(), streams.HeartbeatKey("reg", "i2")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("stopped replica's heartbeat still readable: %v", err)
	}
	if _, err := reg.Get(h.ctx(), hbKey); err != nil {
		t.Errorf("running replica's heartbeat gone: %v", err)
	}

	// A replica with a changed definition rewrites that tool only.
	g3 := workers.NewGroup("reg")
	workers.AddTool(g3, workers.Tool{Name: "echo", Description: "echoes, v2"},
		func(_ context.Context, _ *workers.Call, in textIn) (*schema.ToolResult, error) {
			return workers.TextResult(in.Text), nil
		})
	h.run(g3, workers.Options{Instance: "i3"})
	for name, rev := range revs {
		e, err := reg.Get(h.ctx(), streams.ToolKey(name))
		if err != nil {
			t.Fatal(err)
		}
		if changed := e.Revision() != rev; changed != (name == "echo") {
			t.Errorf("tool %s: revision %d -> %d after a replica changed only echo", name, rev, e.Revision())
		}
	}
}

func TestHeartbeatExpiresAfterCrash(t *testing.T) {
	h := newHarness(t)
	reg := registry(t, h)
	nc := h.connect()
	stop := h.runOn(nc, testGroup("crash", newProbe()), workers.Options{Instance: "c1", Heartbeat: time.Second, HeartbeatTTL: 3 * time.Second})
	key := streams.HeartbeatKey("crash", "c1")
	removed := watchUntilRemoved(t, h, reg, key)

	closedAt := time.Now()
	nc.Close() // the worker's connection dies; Run is not cancelled
	select {
	case op := <-removed:
		el := time.Since(closedAt)
		t.Logf("heartbeat expired after %v (%v)", el, op)
		// The last beat was at most one interval before the close and lives
		// HeartbeatTTL, three intervals.
		if el < time.Second || el > 6*time.Second {
			t.Errorf("heartbeat expired %v after the crash, want about 2-3s", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("heartbeat of a dead worker did not expire within 10s")
	}
	if _, err := reg.Get(h.ctx(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("expired heartbeat still readable: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("Run on a closed connection returned %v after cancel, want nil", err)
	}
}

func TestRunRejectsInvalidGroupName(t *testing.T) {
	h := newHarness(t)
	nc := h.connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := workers.NewGroup("bad name").Run(ctx, nc, workers.Options{Logger: discard})
	if err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("Run with an invalid group name returned %v", err)
	}
}

func TestRunUsesRecordedTopology(t *testing.T) {
	h := newHarness(t) // provisioned with 2 partitions
	h.run(testGroup("topo", newProbe()), workers.Options{Topology: streams.Topology{Partitions: 5, AckWait: time.Second}})
	if _, err := h.js.Stream(h.ctx(), streams.StreamName(4)); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("a worker with other flags created %s: %v", streams.StreamName(4), err)
	}
	for q := 0; q < 2; q++ {
		k := h.keyFor(q)
		h.publish("topo", h.envelope(k, "echo", map[string]any{"text": "p"}))
		if got := h.text(h.await(k, 10*time.Second)); got != "p" {
			t.Errorf("partition %d: %q", q, got)
		}
	}
}

// A heartbeat interval under a second gives a message TTL under a second,
// which JetStream refuses (and sub-second TTLs are truncated to seconds).
func TestSubSecondHeartbeat(t *testing.T) {
	h := newHarness(t)
	nc := h.connect()
	if _, err := h.tryRun(nc, testGroup("fasthb", newProbe()), workers.Options{Heartbeat: 300 * time.Millisecond, HeartbeatTTL: 900 * time.Millisecond, Instance: "f1"}); err != nil {
		t.Fatalf("Run with Heartbeat 300ms: %v", err)
	}
	removed := watchUntilRemoved(t, h, registry(t, h), streams.HeartbeatKey("fasthb", "f1"))
	select {
	case <-removed:
		t.Error("heartbeat of a live worker expired")
	case <-time.After(time.Second):
	}
}
