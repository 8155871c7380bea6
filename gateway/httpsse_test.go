package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// sseClient is a client of the HTTP+SSE transport: its stream's events
// and the URL it posts messages to.
type sseClient struct {
	t        *testing.T
	tg       *testGateway
	stream   *http.Response
	events   <-chan sseEvent
	messages string // the endpoint event's URL
	session  string
}

// openHTTPSSE opens an HTTP+SSE stream (GET /sse), which must be 200
// text/event-stream, and reads its endpoint event, which must name
// /messages?sessionId=....
func openHTTPSSE(t *testing.T, tg *testGateway) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream := tg.open(t, ctx, http.MethodGet, tg.base+"/sse", "", "Accept", "text/event-stream")
	if stream.StatusCode != http.StatusOK || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /sse: status %d, Content-Type %q", stream.StatusCode, stream.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, tg: tg, stream: stream, events: readSSE(stream.Body)}
	ev := nextEvent(t, c.events, "the endpoint event")
	if ev.event != "endpoint" || !strings.HasPrefix(ev.data, "/messages?sessionId=") {
		t.Fatalf("first event %q %q, want endpoint /messages?sessionId=...", ev.event, ev.data)
	}
	u, err := url.Parse(ev.data)
	if err != nil {
		t.Fatal(err)
	}
	if c.session = u.Query().Get("sessionId"); c.session == "" {
		t.Fatalf("endpoint %q names no session", ev.data)
	}
	c.messages = tg.base + ev.data
	return c
}

// send posts body to the endpoint, which must accept it with 202.
func (c *sseClient) send(body string) {
	c.t.Helper()
	if r := c.tg.do(c.t, http.MethodPost, c.messages, body); r.status != http.StatusAccepted {
		c.t.Fatalf("POST %s: status %d, want 202: %s", body, r.status, r.body)
	}
}

// next returns the next event of the stream, which must be a message,
// decoded.
func (c *sseClient) next(what string) rpcMessage {
	c.t.Helper()
	ev := nextEvent(c.t, c.events, what)
	if ev.event != "message" {
		c.t.Fatalf("%s: event %q %q, want a message", what, ev.event, ev.data)
	}
	return decode(c.t, []byte(ev.data))
}

// initialize initializes the session for a client with capabilities,
// which must negotiate revision 2024-11-05.
func (c *sseClient) initialize(capabilities string) {
	c.t.Helper()
	c.send(initializeBody(1, "2024-11-05", capabilities))
	m := c.next("the initialize result")
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil || string(m.ID) != "1" || res.ProtocolVersion != "2024-11-05" {
		c.t.Fatalf("initialize answer %+v", m)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// TestHTTPSSE checks the HTTP+SSE transport of revision 2024-11-05: GET
// /sse opens a stream whose first event, "endpoint", names
// /messages?sessionId=...; every POST there is accepted at once (202) and
// its answer arrives as a "message" event on the stream: initialize
// (negotiating 2024-11-05), tools/call with the worker's result, and
// another with its progress notification first. The session is not one
// of the Streamable HTTP endpoint (404 there); an unknown sessionId is
// 404; closing the stream ends the session.
func TestHTTPSSE(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)

	c.send(callBody(2, "echo", `{"text":"over sse"}`, ""))
	if m := c.next("the call's result"); string(m.ID) != "2" || toolText(t, m.Result) != "over sse" {
		t.Fatalf("call answer %+v", m)
	}

	c.send(callBody(3, "progress", `{}`, "t3"))
	if n := c.next("the progress notification"); n.Method != schema.NotificationProgress || !strings.Contains(string(n.Params), `"progressToken":"t3"`) {
		t.Fatalf("notification %+v", n)
	}
	if m := c.next("the progress call's result"); string(m.ID) != "3" || toolText(t, m.Result) != "done" {
		t.Fatalf("call answer %+v", m)
	}

	// The session belongs to this transport only.
	wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, "Mcp-Session-Id", c.session), http.StatusNotFound, schema.CodeInvalidRequest)
	if r := tg.do(t, http.MethodPost, tg.base+"/messages?sessionId=0123456789abcdef0123456789abcdef", `{"jsonrpc":"2.0","id":6,"method":"ping"}`); r.status != http.StatusNotFound {
		t.Errorf("POST for an unknown session: status %d, want 404", r.status)
	}

	c.stream.Body.Close()
	testkit.Eventually(t, "the closed stream's session to end", waitFor, func() bool {
		r, err := tg.try(context.Background(), http.MethodPost, c.messages, `{"jsonrpc":"2.0","id":7,"method":"ping"}`)
		return err == nil && r.status == http.StatusNotFound
	})
}

// TestHTTPSSEClientCapabilities checks that the capabilities an HTTP+SSE
// client declares in initialize reach the worker in its calls' envelopes,
// and that a worker's roots/list request reaches such a client as a
// message event, whose answer, POSTed to the endpoint, reaches the worker
// with the session.
func TestHTTPSSEClientCapabilities(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	c := openHTTPSSE(t, tg)
	c.initialize(`{"roots":{}}`)

	c.send(callBody(2, "hold", `{}`, ""))
	h := tg.awaitHeld(t)
	if caps, err := schema.MsgpackToJSON(nil, h.call.Env.ClientCaps); err != nil || string(caps) != `{"roots":{}}` {
		t.Errorf("client capabilities in the envelope %s (%v), want {\"roots\":{}}", caps, err)
	}
	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "ok"}}}
	c.next("the held call's result")

	c.send(callBody(3, "roots", `{}`, ""))
	req := c.next("the worker's roots/list request")
	if req.Method != schema.MethodRootsList || req.ID == nil {
		t.Fatalf("request %+v", req)
	}
	c.send(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":{"roots":[]}}`)
	if a := await(t, tg.answers, "the answer at the worker"); a.GatewayError || a.Session != c.session || string(a.Message.Result) != `{"roots":[]}` {
		t.Fatalf("answer at the worker: gateway error %v session %q result %s", a.GatewayError, a.Session, a.Message.Result)
	}
	if m := c.next("the roots call's result"); string(m.ID) != "3" || toolText(t, m.Result) != `{"roots":[]}` {
		t.Fatalf("call answer %+v", m)
	}
}
