package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

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
	select {
	case got := <-w.result:
		if len(got.Result) != 1 || got.Result[0] != 0xc3 {
			t.Fatalf("result %x, want the first one", got.Result)
		}
	default:
		t.Fatal("result lost behind progress replies")
	}
	if n := len(w.notes); n != noteBuffer {
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
		select {
		case rep := <-w.result:
			if rep.Key != fmt.Sprintf("key-%d", i) {
				t.Fatalf("waiter %d got %s", i, rep.Key)
			}
		default:
			t.Fatalf("waiter %d got nothing", i)
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
	<-w.notes
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
		r.published(waiters[key])
	}
	ack := &nats.Msg{Data: []byte(`{"stream":"MCP_REQ_0","seq":1}`)}
	r.pubAck("stored", ack)
	quiet := func(when string, keys ...string) {
		t.Helper()
		for _, key := range keys {
			select {
			case err := <-waiters[key].pubErr:
				t.Errorf("%s: %s got %v", when, key, err)
			default:
			}
		}
	}
	expired := func(when, key string) {
		t.Helper()
		select {
		case err := <-waiters[key].pubErr:
			if !errors.Is(err, errNoPubAck) || !streams.Retryable(err) {
				t.Errorf("%s: %s got %v, want errNoPubAck, retried", when, key, err)
			}
		default:
			t.Errorf("%s: %s not expired", when, key)
		}
	}
	r.expire()
	r.expire()
	quiet("two sweeps", "lost", "stored", "late", "idle")
	r.pubAck("late", ack)
	r.expire()
	expired("third sweep", "lost")
	quiet("third sweep", "stored", "late", "idle")

	r.published(waiters["lost"]) // the publish loop sends it again
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
