package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestListChanged checks how a change of the registry reaches open
// streams: when another worker group comes up with a tool, a session's
// GET stream gets notifications/tools/list_changed with an event id, a
// stateless subscriptions/listen stream (acknowledged first, with its
// subscription id) gets it tagged with its subscription id, and
// tools/list has the new tool. Drain ends the GET stream and answers the
// listen request with a final result, ending it gracefully.
func TestListChanged(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	get := append([]string{"Accept", "text/event-stream"}, hs...)
	stream := tg.open(t, ctx, http.MethodGet, tg.url, "", get...)
	events := readSSE(stream.Body)

	listenBody := statelessBody(9, "subscriptions/listen", `{"notifications":{"toolsListChanged":true}}`)
	listen := tg.open(t, ctx, http.MethodPost, tg.url, listenBody, statelessHeaders("subscriptions/listen", "")...)
	if listen.StatusCode != http.StatusOK || listen.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("subscriptions/listen: status %d, Content-Type %q", listen.StatusCode, listen.Header.Get("Content-Type"))
	}
	listened := readSSE(listen.Body)
	subscription := func(m rpcMessage) string {
		t.Helper()
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil {
			t.Fatalf("params %s: %v", m.Params, err)
		}
		return string(p.Meta[schema.MetaSubscriptionID])
	}
	if ack := decode(t, []byte(nextEvent(t, listened, "the listen acknowledgement").data)); ack.Method != schema.NotificationSubscriptionsAck || subscription(ack) != "9" {
		t.Fatalf("first listen event %s", ack)
	}

	nc, _ := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return tg.emb.Connect() })
	testkit.StartWorker(t, nc, testkit.WorkerOptions{Group: "late", Tools: []schema.Tool{{Name: "late"}},
		Handle: func(context.Context, *testkit.Call) (any, error) { return map[string]any{"content": []any{}}, nil }})

	ev := nextEvent(t, events, "the list change on the GET stream")
	if _, err := strconv.ParseUint(ev.id, 10, 64); err != nil || decode(t, []byte(ev.data)).Method != schema.NotificationToolListChanged {
		t.Fatalf("GET stream event %+v: want notifications/tools/list_changed with a numeric id", ev)
	}
	if m := decode(t, []byte(nextEvent(t, listened, "the list change on the listen stream").data)); m.Method != schema.NotificationToolListChanged || subscription(m) != "9" {
		t.Fatalf("listen event %s", m)
	}
	m := wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hs...))
	var list struct {
		Tools []schema.Tool `json:"tools"`
	}
	if err := json.Unmarshal(m.Result, &list); err != nil || len(list.Tools) != len(testTools)+1 || list.Tools[3].Name != "late" {
		t.Fatalf("tools/list after the change: %s", m.Result)
	}

	tg.g.Drain()
	if ev, ok := <-events; ok {
		t.Fatalf("event %+v on the GET stream after Drain", ev)
	}
	end := decode(t, []byte(nextEvent(t, listened, "the listen request's answer").data))
	var res struct {
		ResultType string `json:"resultType"`
	}
	if err := json.Unmarshal(end.Result, &res); err != nil || string(end.ID) != "9" || res.ResultType != "complete" {
		t.Fatalf("listen answer %s", end)
	}
	if ev, ok := <-listened; ok {
		t.Fatalf("event %+v after the listen request's answer", ev)
	}
}

// resumeTest is a session on a test gateway, for the tests of its GET
// stream's resumption.
type resumeTest struct {
	tg  *testGateway
	ctx context.Context
	get []string // a GET stream's headers
	// listened is a stateless subscriptions/listen stream, acknowledged:
	// it tells when a list change has been published.
	listened <-chan sseEvent
}

func newResumeTest(t *testing.T) *resumeTest {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	listen := tg.open(t, ctx, http.MethodPost, tg.url, statelessBody(9, "subscriptions/listen", `{"notifications":{"toolsListChanged":true}}`),
		statelessHeaders("subscriptions/listen", "")...)
	rt := &resumeTest{tg: tg, ctx: ctx, get: append([]string{"Accept", "text/event-stream"}, hs...), listened: readSSE(listen.Body)}
	nextEvent(t, rt.listened, "the listen acknowledgement")
	return rt
}

// open opens a GET stream of the session, resuming after lastID unless it
// is empty, and fails the test unless it is answered 200.
func (rt *resumeTest) open(t *testing.T, lastID string) *http.Response {
	t.Helper()
	headers := rt.get
	if lastID != "" {
		headers = append(slices.Clip(headers), "Last-Event-ID", lastID)
	}
	r := rt.tg.open(t, rt.ctx, http.MethodGet, rt.tg.url, "", headers...)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET stream (Last-Event-ID %q): status %d, want 200", lastID, r.StatusCode)
	}
	return r
}

// startWorker starts a worker group, name, with a tool of its name: a list
// change, and another once it stops. It returns the worker and its
// connection's JetStream.
func (rt *resumeTest) startWorker(t *testing.T, name string) (*testkit.Worker, jetstream.JetStream) {
	nc, js := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return rt.tg.emb.Connect() })
	return testkit.StartWorker(t, nc, testkit.WorkerOptions{Group: name, Tools: []schema.Tool{{Name: name}},
		Handle: func(context.Context, *testkit.Call) (any, error) { return map[string]any{"content": []any{}}, nil }}), js
}

// listChange returns the id of ev, failing the test unless ev is a tools
// list change with a numeric id.
func listChange(t *testing.T, ev sseEvent) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(ev.id, 10, 64)
	if err != nil || decode(t, []byte(ev.data)).Method != schema.NotificationToolListChanged {
		t.Fatalf("event %+v: want notifications/tools/list_changed with a numeric id", ev)
	}
	return id
}

// TestResumeStream checks resumption of a session's GET stream on the
// same gateway: the client loses its stream after a list change (event
// id N), another change happens meanwhile, and the stream opened again
// with Last-Event-ID N first replays the change it missed, with a later
// id; the replay leaves no consumer on the events stream (gone within
// 3 s, where nats.go would keep an ordered consumer's for 5 minutes).
func TestResumeStream(t *testing.T) {
	rt := newResumeTest(t)
	stream := rt.open(t, "")
	late, js := rt.startWorker(t, "late")
	first := listChange(t, nextEvent(t, readSSE(stream.Body), "the list change on the GET stream"))
	nextEvent(t, rt.listened, "the first list change on the listen stream")

	// The client loses its GET stream; the group goes meanwhile.
	stream.Body.Close()
	testkit.Eventually(t, "the closed GET stream to be let go", waitFor, func() bool { return rt.tg.g.OpenEventStreams() == 1 })
	late.Stop()
	if m := decode(t, []byte(nextEvent(t, rt.listened, "the second list change").data)); m.Method != schema.NotificationToolListChanged {
		t.Fatalf("listen event %s", m)
	}
	following := eventsConsumers(t, js) // the gateway's own, which follows the stream
	resumed := rt.open(t, strconv.FormatUint(first, 10))
	if id := listChange(t, nextEvent(t, readSSE(resumed.Body), "the replayed change")); id <= first {
		t.Fatalf("replayed event id %d, want the list change after id %d", id, first)
	}
	testkit.Eventually(t, "the replay's consumers to go", 3*time.Second, func() bool { return eventsConsumers(t, js) == following })
}

// eventsConsumers is the number of consumers on the events stream now.
func eventsConsumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := js.Stream(ctx, streams.EventsStream) // reads the stream's info
	if err != nil {
		t.Fatalf("reading the events stream: %v", err)
	}
	return s.CachedInfo().State.Consumers
}

// TestResumeBeyondTheEnd checks a GET stream resumed with a Last-Event-ID
// beyond the events stream's last event (an id from another events
// stream, or from before it was made again): the stream opens, replays
// nothing, and carries the next list change, with an id after the last
// event stored when it opened.
func TestResumeBeyondTheEnd(t *testing.T) {
	rt := newResumeTest(t)
	stream := rt.open(t, "")
	// A first change, so that the events stream does not end at 0.
	late, _ := rt.startWorker(t, "late")
	first := listChange(t, nextEvent(t, readSSE(stream.Body), "the first list change"))
	stream.Body.Close()
	testkit.Eventually(t, "the closed GET stream to be let go", waitFor, func() bool { return rt.tg.g.OpenEventStreams() == 1 })

	resumed := rt.open(t, strconv.FormatUint(first+1_000_000, 10))
	late.Stop() // the group goes: a second change
	if id := listChange(t, nextEvent(t, readSSE(resumed.Body), "the change after the resumption")); id <= first {
		t.Fatalf("event id %d, want the list change after id %d", id, first)
	}
}

// TestResumeReplacesStream checks resumption on the gateway that still
// holds the session's stream, as after a connection lost without a FIN:
// the first GET stream stays open, a change it carried (id N) is followed
// by another, and a second GET with Last-Event-ID N is served (not
// refused while the first lives): it replays the change after N, the
// server closes the first stream (its body ends), and the second carries
// the next change live.
func TestResumeReplacesStream(t *testing.T) {
	rt := newResumeTest(t)
	firstEvents := readSSE(rt.open(t, "").Body)
	late, _ := rt.startWorker(t, "late")
	n := listChange(t, nextEvent(t, firstEvents, "the first change on the first stream"))
	nextEvent(t, rt.listened, "the first change on the listen stream")
	late.Stop()
	nextEvent(t, rt.listened, "the second change on the listen stream")

	secondEvents := readSSE(rt.open(t, strconv.FormatUint(n, 10)).Body)
	replayed := listChange(t, nextEvent(t, secondEvents, "the replayed change"))
	if replayed <= n {
		t.Fatalf("replayed event id %d, want after %d", replayed, n)
	}
	for open := true; open; {
		select {
		case _, open = <-firstEvents:
		case <-time.After(waitFor):
			t.Fatal("the replaced stream is still open")
		}
	}
	testkit.Eventually(t, "the replaced stream let go", waitFor, func() bool { return rt.tg.g.OpenEventStreams() == 2 })

	rt.startWorker(t, "later")
	if live := listChange(t, nextEvent(t, secondEvents, "the next change on the new stream")); live <= replayed {
		t.Fatalf("live event id %d, want after %d", live, replayed)
	}
}
