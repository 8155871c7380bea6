package workers

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
)

// TestCancelledIsBounded: a replica remembers the latest cancelMemory
// cancellations and forgets the oldest; one repeated is remembered once.
func TestCancelledIsBounded(t *testing.T) {
	var c cancelled
	for i := range cancelMemory + 10 {
		c.add(cancelID{"s", strconv.Itoa(i)}, "reason "+strconv.Itoa(i))
		c.add(cancelID{"s", strconv.Itoa(i)}, "again")
	}
	if n := len(c.reasons); n != cancelMemory {
		t.Fatalf("%d cancellations remembered, want %d", n, cancelMemory)
	}
	for _, i := range []int{0, 9} {
		if _, ok := c.reason(cancelID{"s", strconv.Itoa(i)}); ok {
			t.Errorf("cancellation %d remembered past the bound", i)
		}
	}
	for _, i := range []int{10, cancelMemory + 9} {
		if got, ok := c.reason(cancelID{"s", strconv.Itoa(i)}); !ok || got != "reason "+strconv.Itoa(i) {
			t.Errorf("cancellation %d: %q, %v", i, got, ok)
		}
	}
}

// A cancellation cancels the handler running the request it names, with
// its reason as the cause, and is remembered for an envelope still
// waiting: a session's request by session and JSON-RPC id, a stateless
// one by its key. A handler that ended is no longer found.
func TestOnCancelReachesRunningHandler(t *testing.T) {
	var r runner
	for _, env := range []*schema.Envelope{
		{Key: "k1", Session: "s1", RequestID: "7"},
		{Key: "k2", Revision: schema.Revision20260728},
	} {
		key, ok := cancelKey(env)
		if !ok {
			t.Fatalf("%s: not cancellable", env.Key)
		}
		ctx, cancel := context.WithCancelCause(t.Context())
		r.running.add(key, cancel)
		c := &schema.Cancel{Session: env.Session, RequestID: env.RequestID, Reason: "bye " + env.Key}
		if env.Session == "" {
			c.Session, c.RequestID = schema.CancelByKey, env.Key
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r.onCancel(&nats.Msg{Data: b})
		if cause := context.Cause(ctx); cause == nil || cause.Error() != "bye "+env.Key {
			t.Errorf("%s: handler's cause %v, want the reason", env.Key, cause)
		}
		if reason, ok := r.cancelled.reason(key); !ok || reason != "bye "+env.Key {
			t.Errorf("%s: remembered %q, %v", env.Key, reason, ok)
		}
		r.running.remove(key)
		if r.running.get(key) != nil {
			t.Errorf("%s: found after its handler ended", env.Key)
		}
	}
	if _, ok := cancelKey(&schema.Envelope{Key: "k3", Session: "s1"}); ok {
		t.Error("a session's notification (no request id) is cancellable")
	}
}
