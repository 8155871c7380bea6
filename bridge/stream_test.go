package bridge_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpstream/mcpstream/bridge"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// TestGETStreamResumed: when the session's GET stream ends (here the
// gateway closes it, as a new GET of the session replaces it), the bridge
// opens it again with Last-Event-ID set to the last event it relayed, so
// that the server's notifications go on reaching the client: those
// published while it had no stream are replayed, and none it relayed
// comes twice.
func TestGETStreamResumed(t *testing.T) {
	tg := startGateway(t, false)
	type opened struct {
		n           int
		lastEventID string
	}
	var (
		mu       sync.Mutex
		session  string
		gets     int
		gotGET   = make(chan opened, 8)
		firstEnd = make(chan struct{})
		release  = make(chan struct{}) // lets the second GET go
	)
	tr := &watchedTransport{
		base: tg.transport,
		before: func(r *http.Request) {
			if r.Method != http.MethodGet {
				return
			}
			mu.Lock()
			gets++
			n := gets
			mu.Unlock()
			if n > 1 {
				select { // as a slow network: the test publishes meanwhile
				case <-release:
				case <-r.Context().Done():
				}
			}
		},
		after: func(r *http.Request, resp *http.Response, err error) {
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" && session == "" {
				session = id
			}
			if r.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
				gotGET <- opened{gets, r.Header.Get("Last-Event-ID")}
			}
		},
		over: func(r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if r.Method == http.MethodGet && gets == 1 {
				close(firstEnd)
			}
		},
	}
	c := runBridge(t, &bridge.Bridge{URL: tg.url, HTTP: &http.Client{Transport: tr}})
	c.initialize()
	if g := await(t, gotGET, "the bridge's GET stream"); g.n != 1 || g.lastEventID != "" {
		t.Fatalf("first GET %+v, want no Last-Event-ID", g)
	}
	ctx := context.Background()
	publish := func(subject string) uint64 {
		t.Helper()
		ack, err := tg.js.Publish(ctx, subject, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	notified := func(method string) {
		t.Helper()
		if line, ok := c.answer(); !ok || !strings.Contains(line, `"method":"`+method+`"`) {
			t.Fatalf("got %q, want %s", line, method)
		}
	}
	first := publish(streams.EventsToolsSubject)
	notified("notifications/tools/list_changed")

	// Another GET of the session replaces the bridge's stream: the
	// gateway closes it.
	mu.Lock()
	sid := session
	mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	other, err := tr.base.RoundTrip(req)
	if err != nil || other.StatusCode != http.StatusOK {
		t.Fatalf("the test's GET: %v %v", other, err)
	}
	defer other.Body.Close()
	await(t, firstEnd, "the end of the bridge's replaced stream")

	// Published while the bridge has no stream: replayed when it resumes.
	publish(streams.EventsPromptsSubject)
	close(release)
	if g := await(t, gotGET, "the bridge opening its GET stream again"); g.lastEventID != strconv.FormatUint(first, 10) {
		t.Fatalf("the GET stream was opened again with Last-Event-ID %q, want %d, the last event relayed", g.lastEventID, first)
	}
	notified("notifications/prompts/list_changed")
	publish(streams.EventsResourcesSubject)
	notified("notifications/resources/list_changed")
}

// TestNoGETStreamNotRetried: an endpoint that answers the GET 405 offers
// no stream (the spec's rule; the gateway does over HTTP/2, where it
// cannot hold one): the bridge goes on without it, and does not ask
// again.
func TestNoGETStreamNotRetried(t *testing.T) {
	tg := startGateway(t, true)
	var gets atomic.Int32
	tr := &watchedTransport{base: tg.transport, before: func(r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
	}}
	given := make(chan struct{}, 1)
	log := slog.New(testkit.LogSignal{Msg: "the endpoint offers no GET stream: the server's own messages cannot reach the client", Ch: given})
	c := runBridge(t, &bridge.Bridge{URL: tg.url, HTTP: &http.Client{Transport: tr}, Log: log})
	c.initialize()
	await(t, given, "the bridge giving the GET stream up")
	if got := c.call(2, "still there"); got != "still there" {
		t.Fatalf("echo: %q", got)
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d GETs, want 1", n)
	}
}
