package workers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

// TestDemoIncrementStoresItsResult: the demo group's increment, a tool
// neither read-only nor idempotent (the second workload of bench/compare),
// takes the result-bucket path: each call's result is stored under its
// key, and a copy the gateway published again (Attempt 2) that the stream
// stored a second time (as past its duplicate window) is answered from
// the bucket, not counted a second time.
func TestDemoIncrementStoresItsResult(t *testing.T) {
	h := newHarness(t)
	h.run(examples.Demo(), workers.Options{})
	total := func(r *schema.Reply) int64 {
		t.Helper()
		if r.Error != nil {
			t.Fatalf("increment failed: %+v", r.Error)
		}
		j, err := schema.MsgpackToJSON(nil, r.Result)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Structured struct {
				Total int64 `json:"total"`
			} `json:"structuredContent"`
		}
		if err := json.Unmarshal(j, &res); err != nil {
			t.Fatalf("result %s: %v", j, err)
		}
		return res.Structured.Total
	}
	k1 := h.call("demo", "increment", map[string]any{})
	if got := total(h.await(k1, 10*time.Second)); got != 1 {
		t.Errorf("first increment: total %d, want 1", got)
	}
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	// The reply goes out before the result is stored (the delivery is
	// acknowledged only once it is): the store is awaited, not assumed.
	awaitPut(t, h, kv, streams.ResultKey(k1), 10*time.Second)
	// The same envelope published again, stored under another message id.
	again := h.envelope(k1, "increment", map[string]any{})
	again.Attempt = 2
	b, err := again.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(streams.RequestSubject("demo", h.partition(k1)))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, k1+".late-copy")
	if _, err := h.js.PublishMsg(h.ctx(), m); err != nil {
		t.Fatal(err)
	}
	copyRep := h.await(k1, 10*time.Second)
	if !copyRep.Cached || total(copyRep) != 1 {
		t.Errorf("the copy: cached %v, total %d; want the stored answer, 1", copyRep.Cached, total(copyRep))
	}
	k2 := h.call("demo", "increment", map[string]any{"by": 2})
	if got := total(h.await(k2, 10*time.Second)); got != 3 {
		t.Errorf("increment by 2 after the copy: total %d, want 3 (the copy not counted)", got)
	}
}

// awaitPut waits until the bucket holds a value of key, watching it, and
// fails the test if none comes within d.
func awaitPut(t *testing.T, h *harness, kv jetstream.KeyValue, key string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx(), d)
	defer cancel()
	w, err := kv.Watch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch of %s ended before a value of it", key)
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no value of %s in the result bucket within %s", key, d)
		}
	}
}
