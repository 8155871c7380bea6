package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

func TestWithRetry(t *testing.T) {
	// "No responders" (no stream leader yet) is retried until it clears.
	calls := 0
	err := withRetry(context.Background(), func() error {
		calls++
		if calls < 3 {
			return nats.ErrNoResponders
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want success on the 3rd", err, calls)
	}

	// A definite answer is not retried.
	calls = 0
	err = withRetry(context.Background(), func() error { calls++; return jetstream.ErrKeyNotFound })
	if !errors.Is(err, jetstream.ErrKeyNotFound) || calls != 1 {
		t.Fatalf("err %v after %d calls, want ErrKeyNotFound at once", err, calls)
	}

	// Retries stop when the context ends, returning the last error.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = withRetry(ctx, func() error { return jetstream.ErrNoStreamResponse })
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

func TestValidSessionID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef":  true,
		"0123456789ABCDEF0123456789abcdef":  false,
		"0123456789abcdef0123456789abcde":   false,
		"0123456789abcdef0123456789abcdef0": false,
		"0123456789abcdef0123456789abcde>":  false,
		"":                                  false,
	} {
		if got := validSessionID(id); got != want {
			t.Errorf("validSessionID(%q) = %v", id, got)
		}
	}
}

// TestSessionRefreshSkipsOlderRevisions: the bucket's watch delivers this
// gateway's own changes after the fact, so the record stored when a
// session was created can arrive after initialize stored its capabilities
// here. Applying it would drop the capabilities until the next entry
// came; refresh skips a revision no newer than the one applied, and takes
// a newer one, another gateway's, in.
func TestSessionRefreshSkipsOlderRevisions(t *testing.T) {
	ctx := context.Background()
	kv := sessionBucket(t)
	s := newSessions(kv, 0, 64, slog.New(slog.DiscardHandler))
	sess, err := s.create(ctx, sessionRecord{Revision: "2024-11-05", Transport: "sse"})
	if err != nil {
		t.Fatal(err)
	}
	created, err := kv.Get(ctx, sess.id)
	if err != nil {
		t.Fatal(err)
	}
	if rpcErr := s.update(ctx, sess, func(rec *sessionRecord) *schema.Error {
		rec.Capabilities = json.RawMessage(`{"roots":{}}`)
		return nil
	}); rpcErr != nil {
		t.Fatal(rpcErr)
	}
	initialized, err := kv.Get(ctx, sess.id)
	if err != nil {
		t.Fatal(err)
	}

	// The watch catching up: the creation's entry, then initialize's.
	for _, e := range []jetstream.KeyValueEntry{created, initialized} {
		s.refresh(sess.id, e.Revision(), e.Value(), e.Created())
		if got := string(sess.capabilities()); got != `{"roots":{}}` {
			t.Fatalf("after the watch delivered revision %d: capabilities %q, want {\"roots\":{}}", e.Revision(), got)
		}
	}

	// Another gateway's change, newer, is taken in.
	newer := sess.sessionRecord
	newer.LogLevel = "error"
	val, err := json.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, sess.id, val)
	if err != nil {
		t.Fatal(err)
	}
	s.refresh(sess.id, rev, val, time.Now())
	if sess.LogLevel != "error" || sess.logLevel.Load() != int32(slices.Index(logLevels, "error")) {
		t.Fatalf("log level %q (%d) after another gateway's change, want error", sess.LogLevel, sess.logLevel.Load())
	}
}

// TestSessionUpdateKeepsOtherGatewaysChanges: two gateways each hold the
// session cached, and each takes a subscription of the client's (its
// requests spread over them) before hearing of the other's. The second
// stores over a revision it has not seen, is refused, takes the newer
// record in and applies its change to it: both subscriptions are stored,
// where storing its cached record as it was would drop the first.
func TestSessionUpdateKeepsOtherGatewaysChanges(t *testing.T) {
	ctx := context.Background()
	kv := sessionBucket(t)
	log := slog.New(slog.DiscardHandler)
	a, b := newSessions(kv, 0, 64, log), newSessions(kv, 0, 64, log)
	onA, err := a.create(ctx, sessionRecord{Revision: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	onB, err := b.get(ctx, onA.id)
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(uri string) func(*sessionRecord) *schema.Error {
		return func(rec *sessionRecord) *schema.Error {
			rec.Subscriptions = append(slices.Clip(rec.Subscriptions), uri)
			return nil
		}
	}
	if rpcErr := a.update(ctx, onA, subscribe("file:///a")); rpcErr != nil {
		t.Fatal(rpcErr)
	}
	if rpcErr := b.update(ctx, onB, subscribe("file:///b")); rpcErr != nil {
		t.Fatal(rpcErr)
	}
	e, err := kv.Get(ctx, onA.id)
	if err != nil {
		t.Fatal(err)
	}
	var stored sessionRecord
	if err := json.Unmarshal(e.Value(), &stored); err != nil {
		t.Fatal(err)
	}
	want := []string{"file:///a", "file:///b"}
	if !slices.Equal(stored.Subscriptions, want) || !slices.Equal(onB.Subscriptions, want) {
		t.Fatalf("stored subscriptions %v, gateway b's %v, want %v", stored.Subscriptions, onB.Subscriptions, want)
	}

	// A session deleted meanwhile (by gateway b) is not stored again.
	if err := b.remove(ctx, onA.id); err != nil {
		t.Fatal(err)
	}
	if rpcErr := a.update(ctx, onA, subscribe("file:///c")); rpcErr == nil || rpcErr.Code != schema.CodeInternalError {
		t.Fatalf("update of a deleted session: %v, want -32603", rpcErr)
	}
	if _, err := kv.Get(ctx, onA.id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the deleted session after the update: %v, want not found", err)
	}
}

// sessionBucket is the session bucket as provisioned by default, on an
// embedded JetStream server of the test's own.
func sessionBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, _, js := testkit.JetStream(t)
	kv, err := js.CreateKeyValue(context.Background(), streams.Topology{}.SessionConfig())
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSessionKeptInUse: a session in use is stored again once a quarter
// of the bucket's TTL has passed since it was stored, so it outlives the
// TTL; not at every request (one write a quarter TTL at most). Unused, it
// expires a TTL after its last write.
func TestSessionKeptInUse(t *testing.T) {
	const ttl = 2 * time.Second
	ctx := context.Background()
	_, _, js := testkit.JetStream(t)
	kv, err := js.CreateKeyValue(ctx, streams.Topology{SessionTTL: ttl}.SessionConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := newSessions(kv, ttl, 64, slog.New(slog.DiscardHandler))
	sess, err := s.create(ctx, sessionRecord{Revision: "2025-11-25", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	created := sess.rev

	// A request every 100 ms for twice the TTL.
	requests := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); requests++ {
		<-tick.C
		if _, err := s.get(ctx, sess.id); err != nil {
			t.Fatalf("request %d, %s after creation: %v", requests, time.Since(sess.CreatedAt), err)
		}
	}
	e, err := kv.Get(ctx, sess.id)
	if err != nil {
		t.Fatalf("in use for twice its TTL, the session is gone from the bucket: %v", err)
	}
	// The bucket holds this key alone: its revisions count the writes.
	writes := e.Revision() - created
	if maxWrites := uint64(2*ttl/(ttl/4)) + 1; writes < 1 || writes > maxWrites {
		t.Errorf("%d requests over %s stored the session %d times, want 1 to %d", requests, 2*ttl, writes, maxWrites)
	}

	// Unused, it expires (looked for in the bucket, not by a request,
	// which would keep it).
	testkit.Eventually(t, "the unused session expired", ttl+10*time.Second, func() bool {
		_, err := kv.Get(ctx, sess.id)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if _, err := newSessions(kv, ttl, 64, slog.New(slog.DiscardHandler)).get(ctx, sess.id); !errors.Is(err, errNoSession) {
		t.Errorf("a gateway without it cached: %v, want errNoSession", err)
	}
}
