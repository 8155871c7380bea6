package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// progressed, if set, is closed at the first progress notification.
	progressed chan struct{}

	mu       sync.Mutex
	logs     []string
	requests []string
}

func (r *recorder) progress(json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.progressed != nil {
		close(r.progressed)
		r.progressed = nil
	}
}

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
// connection to it with maxPending, hangGrace and writeTimeout; notes
// receives the methods of the notifications no call takes (those it has
// room for). The connection is closed when the test ends.
func startConn(t *testing.T, maxPending int, hangGrace, writeTimeout time.Duration, notes chan<- string) *conn {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, proc, err := startProcess([]string{upstreamServer.Path(t, "../..", false)}, nil, "", 4<<20, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	k := newConn(c, proc, connOptions{log: log, maxPending: maxPending, hangGrace: hangGrace, writeTimeout: writeTimeout,
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

// lingerCancelled calls linger on k, which ignores cancellation, under a
// context of ctx, cancels that once the server runs its handler (it
// reports progress as it starts: a request cancelled sooner never
// reaches its handler), and returns the call's recorder once the call has
// returned cancelled; the server goes on running it.
func lingerCancelled(t *testing.T, k *conn, ctx context.Context) *recorder {
	t.Helper()
	actx, acancel := context.WithCancel(ctx)
	started := make(chan struct{})
	a := &recorder{c: actx, progressed: started}
	aerr := make(chan error, 1)
	go func() {
		_, err := k.roundTripWith(actx, "tools/call", func(id int64) json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"name":"linger","arguments":{},"_meta":{"progressToken":%d}}`, id))
		}, a)
		aerr <- err
	}()
	select {
	case <-started:
	case err := <-aerr:
		t.Fatalf("the lingering call ended before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the lingering call did not start within 10s")
	}
	acancel()
	if err := <-aerr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the lingering call: %v, want it cancelled", err)
	}
	return a
}

// TestCancelledCallsMessagesNotRelayedToAnother: session A's call is
// cancelled while the server goes on running it; the connection then
// takes session B's call (MaxPending 2: with 1 it would take none until
// A's ends), the only one in flight; A's handler then sends a log message
// and a sampling request. Neither reaches B's client: the log message
// goes to the worker's log, and the sampling request is answered with an
// error.
func TestCancelledCallsMessagesNotRelayedToAnother(t *testing.T) {
	notes := make(chan string, 16)
	k := startConn(t, 2, time.Minute, 0, notes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a := lingerCancelled(t, k, ctx)

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

// TestStuckWriteEndsAtDeadlineAndRecycles: the process stops reading its
// stdin, then a call 1 MiB long is sent with a 500ms deadline: the pipe
// fills and the write blocks, yet the call ends at its deadline, before
// anything else happens to the connection; the connection is recycled
// once the write has not completed within the write timeout (2s here).
func TestStuckWriteEndsAtDeadlineAndRecycles(t *testing.T) {
	k := startConn(t, 16, time.Minute, 2*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := k.roundTrip(ctx, "tools/call", json.RawMessage(`{"name":"stop_reading","arguments":{}}`), nil); err != nil {
		t.Fatal(err)
	}
	big := json.RawMessage(`{"name":"say","arguments":{"msg":"` + strings.Repeat("x", 1<<20) + `"}}`)
	cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ccancel()
	errc := make(chan error, 1) // buffered: the goroutine ends even if the test fails first
	go func() {
		_, err := k.roundTrip(cctx, "tools/call", big, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the call ended with %v, want its deadline", err)
		}
		if err := k.err(); err != nil {
			t.Fatalf("the call ended only once its connection had: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call was still writing 10s after its 500ms deadline")
	}
	select {
	case <-k.done:
		if err := k.err(); !errors.Is(err, errLost) || !strings.Contains(err.Error(), "write") {
			t.Fatalf("the connection ended with %v, want it recycled for the stuck write", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection with a stuck write was not recycled within 10s")
	}
}

// TestClientCancelDoesNotRecycle: a call its client cancels long before
// its deadline, which the server goes on running (as the spec lets it),
// does not get the process that other sessions share recycled HangGrace
// later: the connection stays up, and serves the next call, which lets
// the cancelled one end.
func TestClientCancelDoesNotRecycle(t *testing.T) {
	const grace = 100 * time.Millisecond
	k := startConn(t, 2, grace, 0, make(chan string, 16))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lingerCancelled(t, k, ctx) // due in 30 s
	time.Sleep(10 * grace)     // the window measured: ten HangGraces after the cancellation
	if err := k.err(); err != nil {
		t.Fatalf("the connection was recycled after a client's cancellation: %v", err)
	}
	if _, err := k.roundTrip(ctx, "tools/call", json.RawMessage(`{"name":"release","arguments":{}}`), &recorder{c: ctx}); err != nil {
		t.Fatalf("the next call: %v", err)
	}
	if err := k.err(); err != nil {
		t.Fatalf("the connection after the cancelled call ended: %v", err)
	}
}

// TestCancelledCallStillCounts: a call cancelled but not answered yet
// still runs on the server, so a connection of MaxPending 1 takes no
// other call until it ends (errBusy: the pool picks another connection),
// and what the server sends stays attributable.
func TestCancelledCallStillCounts(t *testing.T) {
	k := startConn(t, 1, time.Minute, 0, make(chan string, 16))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lingerCancelled(t, k, ctx)
	if n := k.inFlight(); n != 1 {
		t.Fatalf("%d in flight after the cancellation, want the cancelled call still counted", n)
	}
	if _, err := k.roundTrip(ctx, "tools/call", json.RawMessage(`{"name":"release","arguments":{}}`), &recorder{c: ctx}); !errors.Is(err, errBusy) {
		t.Fatalf("another call while the cancelled one runs: %v, want errBusy", err)
	}
}
