package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// upstreamServer is the test MCP server (internal/testkit/upstreamserver),
// built once.
var upstreamServer = &testkit.Binary{Pkg: "./internal/testkit/upstreamserver"}

// recorder is a caller that records what the upstream relays to it: the
// client of one call, as the forwarder would be.
type recorder struct {
	c context.Context

	mu       sync.Mutex
	logs     []string
	requests []string
}

func (r *recorder) progress(json.RawMessage) {}

func (r *recorder) log(params json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, string(params))
}

func (r *recorder) request(_ context.Context, method string, _ json.RawMessage) (json.RawMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, method)
	return json.RawMessage(`{"role":"assistant","model":"test","content":{"type":"text","text":"from the wrong client"}}`), nil
}

func (r *recorder) ctx() context.Context { return r.c }

// got is what r was relayed.
func (r *recorder) got() (logs, requests []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.logs...), append([]string(nil), r.requests...)
}

// startConn starts the test server as a stdio process and initializes a
// connection to it with maxPending and hangGrace; notes receives the
// methods of the notifications no call takes. The connection is closed
// when the test ends.
func startConn(t *testing.T, maxPending int, hangGrace time.Duration, notes chan<- string) *conn {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, proc, err := startProcess([]string{upstreamServer.Path(t, "../..", false)}, nil, "", 4<<20, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	k := newConn(c, proc, connOptions{log: log, maxPending: maxPending, hangGrace: hangGrace,
		onNotify: func(_ *conn, method string, _ json.RawMessage) {
			select {
			case notes <- method:
			default:
			}
		}})
	t.Cleanup(func() { k.close(errors.New("test over")) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.initialize(ctx, "test", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCancelledCallsMessagesNotRelayedToAnother: session A's call is
// cancelled while the server goes on running it; the connection then
// takes session B's call (MaxPending 1), the only one in flight; A's
// handler then sends a log message and a sampling request. Neither
// reaches B's client: the log message goes to the worker's log, and the
// sampling request is answered with an error.
func TestCancelledCallsMessagesNotRelayedToAnother(t *testing.T) {
	notes := make(chan string, 16)
	k := startConn(t, 1, time.Minute, notes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	actx, acancel := context.WithCancel(ctx)
	a := &recorder{c: actx}
	aerr := make(chan error, 1)
	go func() {
		_, err := k.roundTrip(actx, "tools/call", json.RawMessage(`{"name":"linger","arguments":{}}`), a)
		aerr <- err
	}()
	// A is in flight once the connection is busy with it.
	testkit.Eventually(t, "A's call in flight", 10*time.Second, func() bool { return k.inFlight() == 1 })
	acancel()
	if err := <-aerr; !errors.Is(err, context.Canceled) {
		t.Fatalf("A's call: %v, want it cancelled", err)
	}

	b := &recorder{c: ctx}
	res, err := k.roundTrip(ctx, "tools/call", json.RawMessage(`{"name":"release","arguments":{}}`), b)
	if err != nil {
		t.Fatalf("B's call: %v", err)
	}
	logs, requests := b.got()
	if len(logs) != 0 || len(requests) != 0 {
		t.Fatalf("B's client got A's messages: logs %q, requests %q", logs, requests)
	}
	if !strings.Contains(string(res), "sampling failed") {
		t.Fatalf("B's result %s: A's sampling request was not refused", res)
	}
	// The log message was read before B's answer, so it is in notes now.
	var logged bool
	for len(notes) > 0 {
		logged = logged || <-notes == "notifications/message"
	}
	if !logged {
		t.Fatal("A's log message reached neither B nor the worker's log")
	}
	if logs, requests := a.got(); len(logs) != 0 || len(requests) != 0 {
		t.Fatalf("A's cancelled call was relayed logs %q, requests %q", logs, requests)
	}
}
