package workers

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// awaitStored stores a result again until the bucket acknowledges it, as
// when the bucket's leader died with the first write: here the bucket is
// missing at first, so every store is refused, and it appears while the
// worker retries. Past the request's deadline it gives up, and so it does
// at once when its context ends (the group's drain deadline).
func TestAwaitStoredRetriesUntilStored(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := make(chan struct{}, 1)
	r := &runner{js: js, log: slog.New(testkit.LogSignal{Msg: "storing result", Ch: failed})}
	store := func(sctx context.Context, key string, deadline time.Duration) <-chan struct{} {
		env := &schema.Envelope{Key: key, Deadline: time.Now().Add(deadline).UnixNano()}
		subject := streams.ResultSubject(key)
		done := make(chan struct{})
		go func() { defer close(done); r.awaitStored(sctx, env, subject, []byte("result of "+key), nil) }()
		return done
	}
	awaitFailed := func() {
		t.Helper()
		select {
		case <-failed:
		case <-ctx.Done():
			t.Fatal("no failed store")
		}
	}

	// No bucket until the deadline: it gives up.
	gaveUp := store(ctx, "late", 500*time.Millisecond)
	awaitFailed()
	select {
	case <-gaveUp:
	case <-ctx.Done():
		t.Fatal("awaitStored did not give up at the deadline")
	}

	// No bucket, a deadline far off, and the drain deadline passes: it
	// gives up at once.
	drain, abort := context.WithCancelCause(ctx)
	aborted := store(drain, "drained", 20*time.Second)
	awaitFailed()
	abort(errors.New("worker draining"))
	select {
	case <-aborted:
	case <-time.After(time.Second): // the next try would be 200ms on; the deadline 20s
		t.Fatal("awaitStored went on after its context ended")
	}

	done := store(ctx, "k1", 20*time.Second)
	awaitFailed()
	select {
	case <-done:
		t.Fatal("awaitStored returned with nothing stored")
	default:
	}
	kv, err := js.CreateKeyValue(ctx, streams.Topology{}.WithDefaults().ResultConfig())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("awaitStored did not return once the bucket took the result")
	}
	e, err := kv.Get(ctx, streams.ResultKey("k1"))
	if err != nil || string(e.Value()) != "result of k1" {
		t.Fatalf("stored result: %v, %v", e, err)
	}
}
