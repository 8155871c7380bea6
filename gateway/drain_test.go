package gateway_test

import (
	"net/http"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
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
