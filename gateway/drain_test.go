package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// TestDrainHTTPSSE checks that Drain keeps an HTTP+SSE stream open while
// a call it posted is in flight, since the answer travels on the stream:
// the call's result arrives, and only then does the stream end. Meanwhile
// a new request POSTed for the session is refused with 503 and -32000,
// as every new request is, while a notification is still taken (202).
func TestDrainHTTPSSE(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	c.send(callBody(2, "hold", `{}`, ""))
	h := tg.awaitHeld(t)

	tg.g.Drain()
	if id := wantOverloaded(t, tg.do(t, http.MethodPost, c.messages, callBody(3, "echo", `{"text":"x"}`, ""))); id != "3" {
		t.Errorf("refusal id %s, want 3", id)
	}
	if r := tg.do(t, http.MethodPost, c.messages, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}`); r.status != http.StatusAccepted {
		t.Errorf("notification while draining: status %d, want 202: %s", r.status, r.body)
	}

	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "finished"}}}
	if m := c.next("the held call's result"); string(m.ID) != "2" || toolText(t, m.Result) != "finished" {
		t.Fatalf("answer %+v, want the held call's result", m)
	}
	if ev, ok := <-c.events; ok {
		t.Fatalf("event %+v: want the stream ended once its call was answered", ev)
	}
}

// TestDrainTakesNotificationsOfRefusedPOST: an HTTP+SSE POST that mixes a
// request with a notification, while the gateway drains, is refused (503)
// for its request, but its notification is taken: here the cancellation
// of a call in flight, which reaches the worker.
func TestDrainTakesNotificationsOfRefusedPOST(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	c.send(callBody(2, "hold", `{}`, ""))
	h := tg.awaitHeld(t)
	tg.g.Drain()
	r := tg.do(t, http.MethodPost, c.messages, batchOf(callBody(3, "echo", `{"text":"x"}`, ""),
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`))
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("a request and a notification while draining: status %d, want 503: %s", r.status, r.body)
	}
	if err := await(t, h.ended, "the cancelled call to end"); err == nil {
		t.Error("the held call was released, want it cancelled by the notification")
	}
}

// TestDrainServesAcceptedBatches: the requests of a POST the gateway took
// before it began to drain, still queued behind BatchConcurrency, are
// served, not refused, on both transports: an HTTP+SSE batch answered 202
// and a Streamable HTTP batch whose answer has begun.
func TestDrainServesAcceptedBatches(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{BatchConcurrency: 1})
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	c.send(holdBatch(1, 2))
	hs := tg.initialize(t, "2025-03-26", `{}`)
	streamable := tg.postAsync(context.Background(), holdBatch(11, 2), hs...)
	first := []heldCall{tg.awaitHeld(t), tg.awaitHeld(t)}

	tg.g.Drain()
	release := func(h heldCall) {
		h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "done " + h.call.Env.RequestID}}}
	}
	for _, h := range first {
		release(h)
	}
	for range 2 { // the second call of each batch, served while draining
		release(tg.awaitHeld(t))
	}
	for range 2 {
		if m := c.next("an answer of the HTTP+SSE batch"); m.Error != nil || !strings.HasPrefix(toolText(t, m.Result), "done ") {
			t.Errorf("HTTP+SSE answer %s, want its call's result", m)
		}
	}
	r := await(t, streamable, "the Streamable HTTP batch's answer")
	var out []json.RawMessage
	if err := json.Unmarshal(r.body, &out); r.status != http.StatusOK || err != nil || len(out) != 2 {
		t.Fatalf("status %d, want 200 and 2 answers (%v): %s", r.status, err, r.body)
	}
	for i, b := range out {
		if m := decode(t, b); m.Error != nil || toolText(t, m.Result) != fmt.Sprintf("done %d", 11+i) {
			t.Errorf("Streamable HTTP answer %d: %s", i, b)
		}
	}
}

// TestShutdownAnswersCallsLeft checks that the calls still waiting on
// workers when Shutdown's ctx ends are answered, each over its transport,
// with -32000 saying the gateway shut down before the worker answered: a
// JSON response with 503 and Retry-After, an SSE response (started by a
// worker's notification) with a last event, and an HTTP+SSE session on
// its stream, which then ends. Shutdown then returns ctx's error.
func TestShutdownAnswersCallsLeft(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	asJSON := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), hs...)
	heldJSON := tg.awaitHeld(t)

	// The response's head comes with the worker's first notification.
	req, err := newRequest(t.Context(), http.MethodPost, tg.url, callBody(3, "hold", `{}`, "t3"), hs...)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *http.Response, 1)
	go func() {
		resp, err := tg.client.Do(req)
		if err != nil {
			resp = &http.Response{Status: err.Error(), Body: http.NoBody}
		}
		opened <- resp
	}()
	heldSSE := tg.awaitHeld(t)
	if err := heldSSE.call.Notify(schema.NotificationProgress, map[string]any{"progressToken": "t3", "progress": 1}); err != nil {
		t.Fatal(err)
	}
	sse := await(t, opened, "the SSE response's head")
	defer sse.Body.Close()
	if sse.StatusCode != http.StatusOK || sse.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("call answered with SSE: status %q, Content-Type %q", sse.Status, sse.Header.Get("Content-Type"))
	}
	sseEvents := readSSE(sse.Body)
	if m := decode(t, []byte(nextEvent(t, sseEvents, "the progress notification").data)); m.Method != schema.NotificationProgress {
		t.Fatalf("first event %s, want the progress notification", m)
	}

	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	c.send(callBody(4, "hold", `{}`, ""))
	heldHTTPSSE := tg.awaitHeld(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- tg.g.Shutdown(ctx) }()
	testkit.Eventually(t, "the gateway draining", waitFor, func() bool {
		r, err := tg.try(context.Background(), http.MethodPost, tg.url, `{"jsonrpc":"2.0","id":9,"method":"ping"}`, hs...)
		return err == nil && r.status == http.StatusServiceUnavailable
	})
	select {
	case r := <-asJSON:
		t.Fatalf("answered before Shutdown's deadline: %d %s", r.status, r.body)
	default:
	}
	cancel() // the deadline

	wantShutDown := func(what string, m rpcMessage, id string) {
		t.Helper()
		if string(m.ID) != id || m.Error == nil || m.Error.Code != schema.CodeOverloaded || !strings.Contains(m.Error.Message, "shut down") {
			t.Errorf("%s: %s, want error %d for id %s saying the gateway shut down", what, m, schema.CodeOverloaded, id)
		}
	}
	r := await(t, asJSON, "the JSON response")
	wantOverloaded(t, r)
	wantShutDown("JSON response", decode(t, r.body), "2")
	wantShutDown("SSE response", decode(t, []byte(nextEvent(t, sseEvents, "the SSE response's answer").data)), "3")
	if ev, ok := <-sseEvents; ok {
		t.Errorf("SSE response: event %+v after the answer, want its end", ev)
	}
	wantShutDown("HTTP+SSE", c.next("the HTTP+SSE call's answer"), "4")
	if ev, ok := <-c.events; ok {
		t.Errorf("HTTP+SSE stream: event %+v after the answer, want its end", ev)
	}
	if err := await(t, shut, "Shutdown to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	// Nobody waits for the calls any more, and their clients were told to
	// try again: the workers are told to stop them, so that a call tried
	// again does not run beside the first.
	for i, h := range []heldCall{heldJSON, heldSSE, heldHTTPSSE} {
		if err := await(t, h.ended, "the worker's call to end"); err == nil {
			t.Errorf("call %d at the worker: released, want it cancelled by the shutdown", i+2)
		}
	}
}

// TestShutdownWaitsForCalls checks that Shutdown, its ctx not ended,
// returns nil only once the calls in flight are answered: a Streamable
// HTTP call and an HTTP+SSE call get their workers' results, and the
// HTTP+SSE stream has ended.
func TestShutdownWaitsForCalls(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	call := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), hs...)
	held := tg.awaitHeld(t)
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	c.send(callBody(3, "hold", `{}`, ""))
	heldSSE := tg.awaitHeld(t)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- tg.g.Shutdown(ctx) }()
	testkit.Eventually(t, "the gateway draining", waitFor, func() bool { return tg.g.Ready() != nil })

	heldSSE.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "over sse"}}}
	if m := c.next("the HTTP+SSE call's result"); string(m.ID) != "3" || toolText(t, m.Result) != "over sse" {
		t.Fatalf("HTTP+SSE answer %s", m)
	}
	if ev, ok := <-c.events; ok {
		t.Fatalf("HTTP+SSE stream: event %+v after the answer, want its end", ev)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a call in flight", err)
	default:
	}
	held.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "finished"}}}
	if m := wantResult(t, await(t, call, "the call's response")); toolText(t, m.Result) != "finished" {
		t.Errorf("call answer %s", m.Result)
	}
	if err := await(t, shut, "Shutdown to return"); err != nil {
		t.Errorf("Shutdown: %v, want nil", err)
	}
}

// TestDrainHTTPSSEWaitsForOtherGateways: an HTTP+SSE client behind a load
// balancer posts to any gateway, and the answers come back to the one
// holding its stream. When that gateway drains, it keeps the stream open
// for a call the client had posted to another gateway, whose answer then
// arrives on it before the stream ends.
func TestDrainHTTPSSEWaitsForOtherGateways(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	c := openHTTPSSE(t, tg)
	c.initialize(`{}`)
	other := tg.another(t)
	elsewhere := other + c.messages[len(tg.base):] // the same /messages?sessionId=..., on the other gateway
	if r := tg.do(t, http.MethodPost, elsewhere, callBody(2, "hold", `{}`, "")); r.status != http.StatusAccepted {
		t.Fatalf("POST to the other gateway: status %d: %s", r.status, r.body)
	}
	h := tg.awaitHeld(t)

	tg.g.Drain()
	h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "from elsewhere"}}}
	if m := c.next("the call's result, from the other gateway"); string(m.ID) != "2" || toolText(t, m.Result) != "from elsewhere" {
		t.Fatalf("answer %+v, want the held call's result", m)
	}
	if ev, ok := <-c.events; ok {
		t.Fatalf("event %+v: want the stream ended once its call was answered", ev)
	}
}
