package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
)

// TestClientRequest checks a worker's request to the client (roots/list)
// about a call in flight: for a client that declared roots, it reaches the
// client as a JSON-RPC request on the call's SSE response; the client's
// response POSTed to the endpoint is accepted (202, no body) and reaches
// the worker on the answer subject with the session's id, and the result
// follows on the stream, which then ends. A client that did not declare
// roots, or that accepts no event stream, never sees the request: the
// gateway refuses it to the worker (schema.HeaderGatewayError) with -32601
// or -32603, and the call's answer is plain JSON.
func TestClientRequest(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})

	t.Run("relayed", func(t *testing.T) {
		hs := tg.initialize(t, "2025-11-25", `{"roots":{"listChanged":true}}`)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		resp := tg.open(t, ctx, http.MethodPost, tg.url, callBody(2, "roots", `{}`, ""), hs...)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := readSSE(resp.Body)
		ev := nextEvent(t, events, "the request to the client")
		req := decode(t, []byte(ev.data))
		var id string
		if ev.event != "message" || req.Method != schema.MethodRootsList || json.Unmarshal(req.ID, &id) != nil || !strings.HasPrefix(id, "mcps-") {
			t.Fatalf("event %q %s: want a roots/list request with an mcps- string id", ev.event, ev.data)
		}

		roots := `{"roots":[{"uri":"file:///work","name":"work"}]}`
		r := tg.post(t, `{"jsonrpc":"2.0","id":`+string(req.ID)+`,"result":`+roots+`}`, hs...)
		if r.status != http.StatusAccepted || len(r.body) != 0 {
			t.Fatalf("posting the answer: status %d body %q, want 202 and none", r.status, r.body)
		}
		a := await(t, tg.answers, "the answer at the worker")
		if a.GatewayError || a.Session != hs[1] || a.Message.Error != nil || string(a.Message.Result) != roots {
			t.Fatalf("answer at the worker: gateway error %v, session %q (want %q), result %s, error %v",
				a.GatewayError, a.Session, hs[1], a.Message.Result, a.Message.Error)
		}

		m := decode(t, []byte(nextEvent(t, events, "the result").data))
		if string(m.ID) != "2" || toolText(t, m.Result) != roots {
			t.Fatalf("result %s", m.Result)
		}
		if ev, ok := <-events; ok {
			t.Fatalf("event after the result: %+v", ev)
		}
	})

	refused := []struct {
		name, capabilities, accept string
		code                       int
	}{
		{"no roots capability", `{"sampling":{}}`, "application/json, text/event-stream", schema.CodeMethodNotFound},
		{"no event stream", `{"roots":{}}`, "application/json", schema.CodeInternalError},
	}
	for i, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			hs := tg.initialize(t, "2025-11-25", c.capabilities)
			r := tg.post(t, callBody(3+i, "roots", `{}`, ""), append(hs, "Accept", c.accept)...)
			a := await(t, tg.answers, "the refusal at the worker")
			if !a.GatewayError || a.Message.Error == nil || a.Message.Error.Code != c.code {
				t.Fatalf("answer at the worker: gateway error %v, error %+v, want the gateway's %d", a.GatewayError, a.Message.Error, c.code)
			}
			m := wantResult(t, r)
			var res struct {
				IsError bool `json:"isError"`
			}
			if err := json.Unmarshal(m.Result, &res); err != nil || !res.IsError || toolText(t, m.Result) != a.Message.Error.Message {
				t.Fatalf("result %s: want the tool error the worker made of the refusal", m.Result)
			}
		})
	}
}

// TestNotificationsAndResponses checks what the client posts without an
// id expecting no answer: notifications and responses (even to an id the
// server never used, or an error response) are accepted with 202 and no
// body; notifications/cancelled about a call in flight is passed to the
// workers as a schema.Cancel naming the session, the request's JSON-RPC
// id (its JSON text) and the reason, which ends the handler's context.
func TestNotificationsAndResponses(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`,
		`{"jsonrpc":"2.0","id":"not-ours","result":{}}`,
		`{"jsonrpc":"2.0","id":17,"error":{"code":-32601,"message":"no"}}`,
	} {
		if r := tg.post(t, body, hs...); r.status != http.StatusAccepted || len(r.body) != 0 {
			t.Errorf("%s: status %d body %q, want 202 and none", body, r.status, r.body)
		}
	}

	for _, id := range []string{`9`, `"call-a"`} {
		// The call gets no answer once cancelled: the client gives up.
		ctx, cancel := context.WithCancel(context.Background())
		done := tg.postAsync(ctx, `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":{"name":"hold","arguments":{}}}`, hs...)
		h := tg.awaitHeld(t)
		r := tg.post(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+id+`,"reason":"user gave up"}}`, hs...)
		if r.status != http.StatusAccepted || len(r.body) != 0 {
			t.Fatalf("notifications/cancelled: status %d body %q", r.status, r.body)
		}
		c := await(t, tg.w.Cancels(), "the cancellation at the worker")
		if c.Session != hs[1] || c.RequestID != id || c.Reason != "user gave up" {
			t.Fatalf("cancel %+v, want session %s, request %s", c, hs[1], id)
		}
		if err := await(t, h.ended, "the end of the cancelled handler"); err == nil || !strings.Contains(err.Error(), "user gave up") {
			t.Fatalf("the handler's context ended with %v, want the cancellation", err)
		}
		cancel()
		await(t, done, "the cancelled call's client")
	}
}
