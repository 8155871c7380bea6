package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

func replyMsg(t testing.TB, rep *schema.Reply) *nats.Msg {
	t.Helper()
	b, err := rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: "mcp.reply.test", Data: b}
}

// A result is never lost behind progress replies, however many arrive
// before the waiter reads.
func TestRouterResultNeverCrowdedOut(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), func(*schema.Reply) {})
	w := r.register("k1")
	for range 21 {
		r.deliver(replyMsg(t, &schema.Reply{Key: "k1", Kind: schema.ReplyNotification}))
	}
	r.deliver(replyMsg(t, &schema.Reply{Key: "k1", Result: []byte{0xc3}}))
	r.deliver(replyMsg(t, &schema.Reply{Key: "k1", Result: []byte{0xc2}})) // a duplicate
	got, notes, _ := w.take(nil)
	if got == nil {
		t.Fatal("result lost behind progress replies")
	}
	if len(got.Result) != 1 || got.Result[0] != 0xc3 {
		t.Fatalf("result %x, want the first one", got.Result)
	}
	if n := len(notes); n != noteBuffer {
		t.Fatalf("%d notifications buffered, want the bound %d", n, noteBuffer)
	}
	if n := r.dropped.Load(); n != 21-noteBuffer {
		t.Fatalf("%d notifications dropped, want %d", n, 21-noteBuffer)
	}
	if d := r.duplicates.Load(); d != 1 {
		t.Fatalf("duplicates = %d, want 1", d)
	}
}

func TestRouterConcurrentWaiters(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), func(*schema.Reply) {})
	const n = 2000
	var wg sync.WaitGroup
	waiters := make([]*waiter, n)
	for i := range n {
		waiters[i] = r.register(fmt.Sprintf("key-%d", i))
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.deliver(replyMsg(t, &schema.Reply{Key: fmt.Sprintf("key-%d", i), Result: []byte{0xc0}}))
		}()
	}
	wg.Wait()
	for i, w := range waiters {
		rep, _, _ := w.take(nil)
		if rep == nil {
			t.Fatalf("waiter %d got nothing", i)
		}
		if rep.Key != fmt.Sprintf("key-%d", i) {
			t.Fatalf("waiter %d got %s", i, rep.Key)
		}
	}
	// Every key is done: replies now are duplicates, and nothing panics on
	// malformed data.
	r.deliver(replyMsg(t, &schema.Reply{Key: "key-1"}))
	r.deliver(&nats.Msg{Data: []byte("garbage")})
	if d := r.duplicates.Load(); d != 1 {
		t.Fatalf("duplicates = %d, want 1", d)
	}
}

// A request to the client that cannot be relayed (its call is gone, or its
// buffer is full) is handed back at once, never dropped silently: the
// worker asking would otherwise wait out the call's deadline.
func TestRouterHandsBackUnrelayableRequests(t *testing.T) {
	var back []string
	r := newRouter(slog.New(slog.DiscardHandler), func(rep *schema.Reply) { back = append(back, rep.ID) })
	r.deliver(replyMsg(t, &schema.Reply{Key: "gone", Kind: schema.ReplyRequest, Method: schema.MethodRootsList, ID: "a"}))
	w := r.register("k")
	for range noteBuffer {
		r.deliver(replyMsg(t, &schema.Reply{Key: "k", Kind: schema.ReplyNotification}))
	}
	r.deliver(replyMsg(t, &schema.Reply{Key: "k", Kind: schema.ReplyRequest, Method: schema.MethodRootsList, ID: "b"}))
	if fmt.Sprint(back) != "[a b]" {
		t.Fatalf("handed back %v, want [a b]", back)
	}
	if _, notes, _ := w.take(nil); len(notes) != noteBuffer {
		t.Fatalf("%d notifications buffered, want %d", len(notes), noteBuffer)
	}
	r.deliver(replyMsg(t, &schema.Reply{Key: "k", Kind: schema.ReplyRequest, Method: schema.MethodRootsList, ID: "c"}))
	if len(back) != 2 || r.dropped.Load() != 0 {
		t.Fatalf("a request with room was handed back (%v) or counted dropped (%d)", back, r.dropped.Load())
	}
}

// A publish that no acknowledgement answers (its stream's leader died with
// it) ends its wait with a retryable errNoPubAck at the third sweep after
// it was sent, and again three sweeps after each new publish. Acknowledged
// requests, and waits with nothing published, are left alone.
func TestRouterExpiresUnacknowledgedPublishes(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), nil)
	waiters := map[string]*waiter{}
	for _, key := range []string{"lost", "stored", "late", "idle"} {
		waiters[key] = r.register(key)
	}
	for _, key := range []string{"lost", "stored", "late"} {
		r.published(waiters[key], 0)
	}
	ack := &nats.Msg{Data: []byte(`{"stream":"MCP_REQ_0","seq":1}`)}
	r.pubAck("stored", ack)
	quiet := func(when string, keys ...string) {
		t.Helper()
		for _, key := range keys {
			if _, _, err := waiters[key].take(nil); err != nil {
				t.Errorf("%s: %s got %v", when, key, err)
			}
		}
	}
	expired := func(when, key string) {
		t.Helper()
		switch _, _, err := waiters[key].take(nil); {
		case err == nil:
			t.Errorf("%s: %s not expired", when, key)
		case !errors.Is(err, errNoPubAck) || !streams.Retryable(err):
			t.Errorf("%s: %s got %v, want errNoPubAck, retried", when, key, err)
		}
	}
	r.expire()
	r.expire()
	quiet("two sweeps", "lost", "stored", "late", "idle")
	r.pubAck("late", ack)
	r.expire()
	expired("third sweep", "lost")
	quiet("third sweep", "stored", "late", "idle")

	r.published(waiters["lost"], 0) // the publish loop sends it again
	r.expire()
	r.expire()
	quiet("two sweeps after the second publish", "lost")
	r.expire()
	expired("third sweep after the second publish", "lost")
	for range 3 {
		r.expire()
	}
	quiet("sweeps with nothing published since", "lost", "stored", "late", "idle")
}

// When a request stream gets a new leader, the requests published to it and
// not acknowledged end their wait at once with a retryable errNoPubAck, to
// be published again; those of other partitions, acknowledged ones and
// waits with nothing published are left alone.
func TestRouterElectionRepublishes(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), nil)
	waiters := map[string]*waiter{}
	for _, key := range []string{"lost", "stored", "elsewhere", "idle"} {
		waiters[key] = r.register(key)
	}
	r.published(waiters["lost"], 1)
	r.published(waiters["stored"], 1)
	r.published(waiters["elsewhere"], 2)
	r.pubAck("stored", &nats.Msg{Data: []byte(`{"stream":"MCP_REQ_1","seq":1}`)})
	r.elected(1)
	for key, w := range waiters {
		switch _, _, err := w.take(nil); {
		case err == nil:
			if key == "lost" {
				t.Error("lost: its wait goes on after the election")
			}
		case key != "lost":
			t.Errorf("%s got %v", key, err)
		case !errors.Is(err, errNoPubAck) || !streams.Retryable(err):
			t.Errorf("lost got %v, want errNoPubAck, retried", err)
		}
	}
	// Signalled once: sweeps do not end its wait again until it is
	// published again.
	for range 3 {
		r.expire()
	}
	if _, _, err := waiters["lost"].take(nil); err != nil {
		t.Errorf("lost signalled again: %v", err)
	}
}

// An election wakes the waits taken for its partition before it, once;
// a wait taken after it waits for the next one.
func TestElectionsWake(t *testing.T) {
	var e elections
	one, two := e.wait(1), e.wait(2)
	if e.wait(1) != one {
		t.Fatal("two waits of one partition before an election differ")
	}
	e.elected(1)
	select {
	case <-one:
	default:
		t.Fatal("partition 1's wait not woken by its election")
	}
	select {
	case <-two:
		t.Fatal("partition 2's wait woken by partition 1's election")
	default:
	}
	select {
	case <-e.wait(1):
		t.Fatal("a wait taken after the election is already woken")
	default:
	}
	e.elected(3) // no one waits: nothing to do
}

// noteRecorder is a replier that records the notifications passed to it.
type noteRecorder struct{ notes []string }

func (n *noteRecorder) result(resultBody)       {}
func (n *noteRecorder) fail(int, *schema.Error) {}
func (n *noteRecorder) note(rep *schema.Reply)  { n.notes = append(n.notes, rep.Method) }
func (n *noteRecorder) accepted()               {}

// A wait passes on the notifications that came before the result, in
// order, then returns the result, which wins over an error that came with
// it; with no result, it returns the error, after the notifications.
func TestWaitNotesBeforeResult(t *testing.T) {
	g := &Gateway{cut: make(chan struct{})}
	r := newRouter(slog.New(slog.DiscardHandler), func(*schema.Reply) {})
	ctx := t.Context()

	w := r.register("k1")
	for _, m := range []string{"a", "b", "c"} {
		r.deliver(replyMsg(t, &schema.Reply{Key: "k1", Kind: schema.ReplyNotification, Method: m}))
	}
	w.signal(errNoPubAck)
	r.deliver(replyMsg(t, &schema.Reply{Key: "k1", Result: []byte{0xc3}}))
	var out noteRecorder
	rep, rpcErr, err := g.wait(ctx, nil, w, &out)
	if rep == nil || rpcErr != nil || err != nil {
		t.Fatalf("wait = %v, %v, %v; want the result", rep, rpcErr, err)
	}
	if fmt.Sprint(out.notes) != "[a b c]" {
		t.Fatalf("notifications %v, want [a b c] before the result", out.notes)
	}

	w = r.register("k2")
	r.deliver(replyMsg(t, &schema.Reply{Key: "k2", Kind: schema.ReplyNotification, Method: "d"}))
	w.signal(errNoPubAck)
	w.signal(errReplyMayBeLost) // an error is pending: not kept
	out = noteRecorder{}
	if rep, _, err := g.wait(ctx, nil, w, &out); rep != nil || !errors.Is(err, errNoPubAck) {
		t.Fatalf("wait = %v, %v; want errNoPubAck", rep, err)
	}
	if fmt.Sprint(out.notes) != "[d]" {
		t.Fatalf("notifications %v, want [d]", out.notes)
	}
	if rep, notes := w.takeResult(nil); rep != nil || len(notes) != 0 {
		t.Fatalf("takeResult before the result = %v, %v", rep, notes)
	}
	r.deliver(replyMsg(t, &schema.Reply{Key: "k2", Kind: schema.ReplyNotification, Method: "e"}))
	r.deliver(replyMsg(t, &schema.Reply{Key: "k2", Result: []byte{0xc3}}))
	if rep, notes := w.takeResult(nil); rep == nil || len(notes) != 1 || notes[0].Method != "e" {
		t.Fatalf("takeResult = %v, %v; want the result after e", rep, notes)
	}
}

// A waiter given back (unregister) is empty for the request it serves
// next: no result, notification, error or wake-up token of the request
// before, its marks cleared, its timer stopped without a tick left; and a
// late copy of the request before's reply finds no waiter.
func TestRouterWaiterGivenBack(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), func(*schema.Reply) {})
	w := r.register("old")
	w.expiryTimer(time.Nanosecond)
	w.msgID[0] = "old"
	r.published(w, 3)
	w.suspect.Store(true)
	r.deliver(replyMsg(t, &schema.Reply{Key: "old", Kind: schema.ReplyNotification}))
	w.signal(errNoPubAck)
	r.deliver(replyMsg(t, &schema.Reply{Key: "old", Result: []byte{0xc3}}))
	r.unregister("old", w)

	if rep, notes, err := w.take(nil); rep != nil || len(notes) != 0 || err != nil {
		t.Errorf("given back holding result %v, %d notifications, error %v", rep, len(notes), err)
	}
	select {
	case <-w.wake:
		t.Error("given back with a wake-up token")
	default:
	}
	if w.published.Load() != 0 || w.acked.Load() || w.suspect.Load() || w.partition.Load() != 0 || w.msgID[0] != "" {
		t.Errorf("given back marked: published %d acked %v suspect %v partition %d msgID %q",
			w.published.Load(), w.acked.Load(), w.suspect.Load(), w.partition.Load(), w.msgID[0])
	}
	expiry := w.expiryTimer(time.Hour)
	select {
	case <-expiry.C:
		t.Error("the timer of the request before ticked for the next")
	default:
	}

	dup := r.duplicates.Load()
	r.deliver(replyMsg(t, &schema.Reply{Key: "old", Result: []byte{0xc2}}))
	if r.duplicates.Load() != dup+1 {
		t.Error("a late copy of the reply before was not counted a duplicate")
	}
	if rep, _, _ := w.take(nil); rep != nil {
		t.Error("a late copy of the reply before reached the waiter given back")
	}
}
