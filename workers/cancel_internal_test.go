package workers

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

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
// one by its key. A handler that ended is no longer found, and a
// cancellation of its request does not reach the next handler of its
// slot; another slot's handler is untouched.
func TestOnCancelReachesRunningHandler(t *testing.T) {
	r := runner{slots: make([]slot, 2)}
	root := context.WithoutCancel(t.Context())
	other := &r.slots[0]
	otherCtx, stop := context.WithCancel(other.context(root))
	defer stop()
	other.hold(nil, &schema.Envelope{Key: "k0"}, time.Now(), false, cancelID{"s0", "1"}, true)
	held := &r.slots[1]
	for _, env := range []*schema.Envelope{
		{Key: "k1", Session: "s1", RequestID: "7"},
		{Key: "k2", Revision: schema.Revision20260728},
	} {
		key, ok := cancelKey(env)
		if !ok {
			t.Fatalf("%s: not cancellable", env.Key)
		}
		ctx, cancel := context.WithDeadline(held.context(root), time.Now().Add(time.Minute))
		held.hold(nil, env, time.Now(), false, key, true)
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
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("%s: handler's context %v, want cancelled", env.Key, ctx.Err())
		}
		if reason, ok := r.cancelled.reason(key); !ok || reason != "bye "+env.Key {
			t.Errorf("%s: remembered %q, %v", env.Key, reason, ok)
		}
		cancel()
		held.release()

		// The slot's next handler: its context is new, and the request
		// before it cancelled again (as a late copy would) leaves it be.
		next, cancelNext := context.WithDeadline(held.context(root), time.Now().Add(time.Minute))
		held.hold(nil, &schema.Envelope{Key: "n" + env.Key}, time.Now(), false, cancelID{"s9", "9"}, true)
		r.onCancel(&nats.Msg{Data: b})
		if next.Err() != nil {
			t.Errorf("%s: the slot's next handler ended (%v) by the cancellation of the one before", env.Key, context.Cause(next))
		}
		cancelNext()
		held.release()
	}
	if otherCtx.Err() != nil {
		t.Errorf("another slot's handler ended: %v", context.Cause(otherCtx))
	}
	if _, ok := cancelKey(&schema.Envelope{Key: "k3", Session: "s1"}); ok {
		t.Error("a session's notification (no request id) is cancellable")
	}
}

// A slot's context ended at the drain deadline ends the handler held
// with the cause, and the slot's next handler gets a context of its own.
func TestSlotAbort(t *testing.T) {
	var s slot
	root := context.WithoutCancel(t.Context())
	ctx, cancel := context.WithDeadline(s.context(root), time.Now().Add(time.Minute))
	defer cancel()
	s.hold(nil, &schema.Envelope{Key: "k"}, time.Now(), false, cancelID{}, false)
	s.abort(ErrDraining)
	if !errors.Is(context.Cause(ctx), ErrDraining) {
		t.Fatalf("handler's cause %v, want ErrDraining", context.Cause(ctx))
	}
	s.release()
	if next := s.context(root); next.Err() != nil {
		t.Fatalf("the next handler's parent has ended: %v", context.Cause(next))
	}
}
