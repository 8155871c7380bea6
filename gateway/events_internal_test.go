package gateway

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// A registry change that lands after the registry is ready but before the
// announcing goroutine reads its first snapshot is announced all the
// same: an announcer started only after the change (as one the scheduler
// ran late would be) publishes it, where comparing from the snapshot
// current when it starts would find nothing new.
func TestAnnounceFromTheFirstSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := startAnnouncing(t, ctx)
	g, announced := a.g, a.announced
	a.startLate(t)
	testkit.Eventually(t, "the gateway to see the late tool", 20*time.Second, func() bool { return g.reg.Load().Tool("late") != nil })
	select {
	case <-announced:
	case <-ctx.Done():
		t.Fatal("the gateway's announcer did not publish the change")
	}

	late, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.announceListChanges(late) }()
	defer func() { stop(); <-done }()
	select {
	case <-announced:
	case <-ctx.Done():
		t.Fatal("an announcer started after the change did not announce it")
	}
}

// A list change the events stream does not acknowledge at first (here:
// the stream is gone, as during an election; the publish waits for an
// acknowledgement until it times out) is published again until the
// stream takes it.
func TestAnnounceTriesAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := startAnnouncing(t, ctx)
	if err := a.js.DeleteStream(ctx, streams.EventsStream); err != nil {
		t.Fatal(err)
	}
	a.startLate(t)
	select {
	case <-a.announced:
	case <-ctx.Done():
		t.Fatal("the change was not published")
	}
	// The stream is back; the first publish goes unacknowledged.
	st, err := streams.EventsStreamOf(ctx, a.js, a.g.topo)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the change stored", 20*time.Second, func() bool {
		m, err := st.GetLastMsgForSubject(ctx, streams.EventsToolsSubject)
		return err == nil && m.Subject == streams.EventsToolsSubject
	})
}

// announcing is a gateway over a fresh server, serving one worker group,
// and a core subscription that sees every publish of a tools list change,
// duplicates too (the events stream keeps one of each change).
type announcing struct {
	g         *Gateway
	js        jetstream.JetStream
	connect   func() *nats.Conn
	announced chan string // the message id of each publish
}

var announceHandle = func(context.Context, *testkit.Call) (any, error) { return map[string]any{"content": []any{}}, nil }

func startAnnouncing(t *testing.T, ctx context.Context) *announcing {
	t.Helper()
	emb, _, js := testkit.JetStream(t)
	connect := func() *nats.Conn {
		nc, _ := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return emb.Connect() })
		return nc
	}
	testkit.StartWorker(t, connect(), testkit.WorkerOptions{Group: "first", Tools: []schema.Tool{{Name: "first"}}, Handle: announceHandle})
	g, err := New(ctx, connect(), Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	a := &announcing{g: g, js: js, connect: connect, announced: make(chan string, 64)}
	watch := connect()
	if _, err := watch.Subscribe(streams.EventsToolsSubject, func(m *nats.Msg) {
		select {
		case a.announced <- m.Header.Get(jetstream.MsgIDHeader):
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	return a
}

// startLate starts a second worker group, with a tool of its own: a
// change of the tools list.
func (a *announcing) startLate(t *testing.T) {
	t.Helper()
	testkit.StartWorker(t, a.connect(), testkit.WorkerOptions{Group: "late", Tools: []schema.Tool{{Name: "late"}}, Handle: announceHandle})
}
