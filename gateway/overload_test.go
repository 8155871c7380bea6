package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// wantOverloaded checks that r refuses a request for lack of room: HTTP
// 503 with a Retry-After of whole seconds and a JSON-RPC -32000 error
// whose data has retryAfterMs; it returns the error's id.
func wantOverloaded(t *testing.T, r response) string {
	t.Helper()
	m := wantError(t, r, http.StatusServiceUnavailable, schema.CodeOverloaded)
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	var data struct {
		RetryAfterMs int `json:"retryAfterMs"`
	}
	if err := json.Unmarshal(m.Error.Data, &data); err != nil || data.RetryAfterMs <= 0 {
		t.Errorf("error data %s, want retryAfterMs", m.Error.Data)
	}
	return string(m.ID)
}

// TestSessionLimit checks admission per session: with MaxSessionInFlight
// 1, a session's second call while its first is held by the worker is
// refused at once (503, Retry-After, -32000 with retryAfterMs, the
// request's id), while another session's call goes through; the held
// call then completes.
func TestSessionLimit(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{MaxSessionInFlight: 1})
	a, b := tg.initialize(t, "2025-11-25", `{}`), tg.initialize(t, "2025-11-25", `{}`)
	held := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), a...)
	h := tg.awaitHeld(t)

	if id := wantOverloaded(t, tg.post(t, callBody(3, "echo", `{"text":"x"}`, ""), a...)); id != "3" {
		t.Errorf("refusal id %s, want 3", id)
	}
	if m := wantResult(t, tg.post(t, callBody(4, "echo", `{"text":"other session"}`, ""), b...)); toolText(t, m.Result) != "other session" {
		t.Errorf("other session's call: %s", m.Result)
	}
	// What waits on no worker is not limited.
	wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, a...))

	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "first"}}}
	if m := wantResult(t, await(t, held, "the held call's response")); toolText(t, m.Result) != "first" {
		t.Errorf("held call: %s", m.Result)
	}
	if m := wantResult(t, tg.post(t, callBody(6, "echo", `{"text":"again"}`, ""), a...)); toolText(t, m.Result) != "again" {
		t.Errorf("call after the first ended: %s", m.Result)
	}
}

// TestGatewayLimit checks the gateway's in-flight limit: with
// MaxInFlight 1 and one call held, another session's request is refused
// at the door (503, Retry-After, -32000 with retryAfterMs), while
// initialize, which never waits on a worker, is still served.
func TestGatewayLimit(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{MaxInFlight: 1})
	a, b := tg.initialize(t, "2025-11-25", `{}`), tg.initialize(t, "2025-11-25", `{}`)
	held := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), a...)
	h := tg.awaitHeld(t)

	wantOverloaded(t, tg.post(t, callBody(3, "echo", `{"text":"x"}`, ""), b...))
	r := tg.post(t, initializeBody(4, "2025-11-25", `{}`))
	if wantResult(t, r); r.header.Get("Mcp-Session-Id") == "" {
		t.Error("initialize at the limit opened no session")
	}

	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "first"}}}
	wantResult(t, await(t, held, "the held call's response"))
	wantResult(t, tg.post(t, callBody(5, "echo", `{"text":"x"}`, ""), b...))
}

// TestGatewayLimitLetsAnswersIn checks that, at the gateway's in-flight
// limit, what the client posts to finish calls already in flight is
// still taken: its answer to a worker's request (202), which the call
// waits for, so that the call can end and make room.
func TestGatewayLimitLetsAnswersIn(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{MaxInFlight: 1})
	hs := tg.initialize(t, "2025-11-25", `{"roots":{}}`)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp := tg.open(t, ctx, http.MethodPost, tg.url, callBody(2, "roots", `{}`, ""), hs...)
	events := readSSE(resp.Body)
	req := decode(t, []byte(nextEvent(t, events, "the worker's request").data))
	if r := tg.post(t, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":{"roots":[]}}`, hs...); r.status != http.StatusAccepted {
		t.Fatalf("the client's answer at the limit: status %d, want 202: %s", r.status, r.body)
	}
	if a := await(t, tg.answers, "the answer at the worker"); a.GatewayError {
		t.Fatalf("the worker got the gateway's refusal %+v", a.Message.Error)
	}
	if m := decode(t, []byte(nextEvent(t, events, "the call's result").data)); string(m.ID) != "2" {
		t.Fatalf("result %s", m)
	}
}

// TestDrain checks Gateway.Drain: a call in flight completes, open event
// streams end, and new requests (calls, pings, stateless requests, new
// HTTP+SSE streams) are refused with 503 and Retry-After, so that clients
// go to another gateway.
func TestDrain(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	held := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), hs...)
	h := tg.awaitHeld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := tg.open(t, ctx, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, hs...)...)
	events := readSSE(stream.Body)

	tg.g.Drain()
	if ev, ok := <-events; ok {
		t.Fatalf("event %+v: want the stream ended by Drain", ev)
	}
	if id := wantOverloaded(t, tg.post(t, callBody(3, "echo", `{"text":"x"}`, ""), hs...)); id != "3" {
		t.Errorf("refusal id %s, want 3", id)
	}
	wantOverloaded(t, tg.post(t, `{"jsonrpc":"2.0","id":4,"method":"ping"}`, hs...))
	wantOverloaded(t, tg.post(t, statelessBody(5, "tools/list", ""), statelessHeaders("tools/list", "")...))
	if r := tg.do(t, http.MethodGet, tg.base+"/sse", "", "Accept", "text/event-stream"); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /sse while draining: status %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}

	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "finished"}}}
	if m := wantResult(t, await(t, held, "the call in flight")); toolText(t, m.Result) != "finished" {
		t.Errorf("call in flight: %s", m.Result)
	}

	t.Run("initialize", func(t *testing.T) {
		wantOverloaded(t, tg.post(t, initializeBody(6, "2025-11-25", `{}`)))
	})
}

// TestReadiness: /readyz answers 200 while the gateway is connected, its
// registry loaded and it is not retiring; Retire makes it 503 while
// requests are still served, and so does Drain; /healthz, the liveness
// check, stays 200 while NATS is connected.
func TestReadiness(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	get := func(path string) response { return tg.do(t, http.MethodGet, tg.base+path, "") }
	if r := get(gateway.ReadyPath); r.status != http.StatusOK {
		t.Fatalf("ready gateway: %d %s", r.status, r.body)
	}
	tg.g.Retire()
	if r := get(gateway.ReadyPath); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "retiring") {
		t.Fatalf("retired gateway: %d %s, want 503 saying it retires", r.status, r.body)
	}
	hs := tg.initialize(t, "2025-11-25", `{}`) // still served
	wantResult(t, tg.post(t, callBody(2, "echo", `{"text":"still here"}`, ""), hs...))
	tg.g.Drain()
	if r := get(gateway.ReadyPath); r.status != http.StatusServiceUnavailable {
		t.Fatalf("draining gateway: %d %s", r.status, r.body)
	}
	if r := get(gateway.HealthPath); r.status != http.StatusOK {
		t.Fatalf("liveness while draining: %d %s", r.status, r.body)
	}
}

// TestEventStreamLimit checks Config.MaxEventStreams on every transport
// that opens an event stream: with the one stream allowed open (a
// session's GET), another session's GET, a GET of the HTTP+SSE transport
// and a subscriptions/listen are each refused at once with 503,
// Retry-After and -32000 naming the limit; a GET that replaces the open
// session's stream opens none more and is served.
func TestEventStreamLimit(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{MaxEventStreams: 1})
	ctx := t.Context()
	a := tg.initialize(t, "2025-11-25", `{}`)
	getA := append([]string{"Accept", "text/event-stream"}, a...)
	if r := tg.open(t, ctx, http.MethodGet, tg.url, "", getA...); r.StatusCode != http.StatusOK {
		t.Fatalf("first GET: status %d", r.StatusCode)
	}
	testkit.Eventually(t, "the first stream open", waitFor, func() bool { return tg.g.OpenEventStreams() == 1 })

	// refused opens a stream, which must be refused: a stream opened by
	// mistake is not read to its end.
	refused := func(t *testing.T, method, url, body string, headers ...string) {
		t.Helper()
		resp := tg.open(t, ctx, method, url, body, headers...)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, Content-Type %q, want 503", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		wantOverloaded(t, response{status: resp.StatusCode, header: resp.Header, body: b})
		if m := decode(t, b); !strings.Contains(m.Error.Message, "event stream limit") {
			t.Errorf("refusal %s, want the event stream limit named", b)
		}
	}
	t.Run("GET", func(t *testing.T) {
		refused(t, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, tg.initialize(t, "2025-11-25", `{}`)...)...)
	})
	t.Run("HTTP+SSE", func(t *testing.T) {
		refused(t, http.MethodGet, tg.base+"/sse", "", "Accept", "text/event-stream")
	})
	t.Run("subscriptions/listen", func(t *testing.T) {
		refused(t, http.MethodPost, tg.url, statelessBody(9, "subscriptions/listen", `{"notifications":{"toolsListChanged":true}}`),
			statelessHeaders("subscriptions/listen", "")...)
	})
	t.Run("replacing GET", func(t *testing.T) {
		if r := tg.open(t, ctx, http.MethodGet, tg.url, "", getA...); r.StatusCode != http.StatusOK {
			t.Fatalf("GET replacing the session's stream: status %d, want 200", r.StatusCode)
		}
		testkit.Eventually(t, "the replaced stream let go", waitFor, func() bool { return tg.g.OpenEventStreams() == 1 })
	})
}

// TestBodyMemory checks the bound on request bodies held at once: with
// MaxBodyMemory 600 KiB and two calls of 250 KiB held by the worker, a
// third such body is refused while it is read (503, Retry-After, -32000
// with retryAfterMs, the connection closed), while a small call goes
// through; once the held calls are answered their bytes are given back
// and a body of 250 KiB is served again, over Streamable HTTP and over
// the HTTP+SSE transport, whose POSTs give theirs back when their
// requests have been served in the background.
func TestBodyMemory(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{MaxBody: 256 << 10, MaxBodyMemory: 600 << 10})
	a := tg.initialize(t, "2025-11-25", `{}`)
	large := func(id int, tool string) string {
		return callBody(id, tool, `{"text":"`+strings.Repeat("x", 250<<10)+`"}`, "")
	}
	first := tg.postAsync(context.Background(), large(2, "hold"), a...)
	h1 := tg.awaitHeld(t)
	second := tg.postAsync(context.Background(), large(3, "hold"), a...)
	h2 := tg.awaitHeld(t)

	r := tg.post(t, large(4, "echo"), a...)
	wantOverloaded(t, r)
	if !r.close {
		t.Error("a refused body's connection is kept open, want it closed (the rest of the body unread)")
	}
	if m := wantResult(t, tg.post(t, callBody(5, "echo", `{"text":"small"}`, ""), a...)); toolText(t, m.Result) != "small" {
		t.Errorf("small call beside the held bodies: %s", m.Result)
	}

	for _, h := range []heldCall{h1, h2} {
		h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "done"}}}
	}
	wantResult(t, await(t, first, "the first held call's response"))
	wantResult(t, await(t, second, "the second held call's response"))
	for i := range 3 { // more than the bound together: each was given back
		if m := wantResult(t, tg.post(t, large(6+i, "echo"), a...)); len(toolText(t, m.Result)) != 250<<10 {
			t.Fatalf("large call %d after the held ones: %d bytes echoed", i, len(toolText(t, m.Result)))
		}
	}

	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	for i := range 3 {
		c.send(large(20+i, "echo"))
		if m := c.next("an HTTP+SSE answer"); len(toolText(t, m.Result)) != 250<<10 {
			t.Fatalf("HTTP+SSE answer %d: %d bytes echoed", i, len(toolText(t, m.Result)))
		}
	}
}
