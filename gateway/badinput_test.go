package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
)

// TestBadInput checks how the endpoint refuses what a conforming client
// does not send, in a live session: a body over Config.MaxBody is 413; a
// Content-Type other than application/json 415 (parameters such as
// charset are fine); an Accept allowing neither JSON nor event streams
// 406; JSON nested deeper than Config.MaxDepth 400 (-32600); malformed
// JSON 400 with -32700 and a null id; a message that is not JSON-RPC 2.0
// 400 with -32600 (as is one with a null id); an Origin that is neither loopback nor allowed 403; an
// HTTP method other than GET, POST and DELETE 405 naming them in Allow.
// Each refusal's body is a JSON-RPC error.
func TestBadInput(t *testing.T) {
	const maxBody, maxDepth = 2048, 8
	tg := newTestGateway(t, gateway.Config{MaxBody: maxBody, MaxDepth: maxDepth})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	echo := callBody(2, "echo", `{"text":"ok"}`, "")

	t.Run("body too large", func(t *testing.T) {
		big := callBody(3, "echo", `{"text":"`+strings.Repeat("x", maxBody)+`"}`, "")
		wantError(t, tg.post(t, big, hs...), http.StatusRequestEntityTooLarge, schema.CodeInvalidRequest)
		// Just within the bound is served.
		fits := callBody(4, "echo", `{"text":"`+strings.Repeat("y", maxBody-200)+`"}`, "")
		if m := wantResult(t, tg.post(t, fits, hs...)); len(toolText(t, m.Result)) != maxBody-200 {
			t.Errorf("result %s", m.Result)
		}
	})

	t.Run("Content-Type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			h := append(append([]string{}, hs...), "Content-Type", ct)
			wantError(t, tg.post(t, echo, h...), http.StatusUnsupportedMediaType, schema.CodeInvalidRequest)
		}
		wantResult(t, tg.post(t, echo, append(hs, "Content-Type", "application/json; charset=utf-8")...))
	})

	t.Run("Accept", func(t *testing.T) {
		wantError(t, tg.post(t, echo, append(hs, "Accept", "text/html")...), http.StatusNotAcceptable, schema.CodeInvalidRequest)
		wantResult(t, tg.post(t, echo, append(hs, "Accept", "*/*")...))
	})

	t.Run("too deep", func(t *testing.T) {
		deep := callBody(5, "echo", `{"text":"x","n":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)+`}`, "")
		wantError(t, tg.post(t, deep, hs...), http.StatusBadRequest, schema.CodeInvalidRequest)
		shallow := callBody(6, "echo", `{"text":"x","n":[[1]]}`, "")
		wantResult(t, tg.post(t, shallow, hs...))
	})

	t.Run("malformed JSON", func(t *testing.T) {
		for _, body := range []string{`{"jsonrpc":"2.0","id":7,"method":`, `not json`, `{"jsonrpc":"2.0","id":7}}`} {
			m := wantError(t, tg.post(t, body, hs...), http.StatusBadRequest, schema.CodeParseError)
			if m.ID != nil && string(m.ID) != "null" {
				t.Errorf("%s: id %s, want null", body, m.ID)
			}
		}
	})

	t.Run("not JSON-RPC 2.0", func(t *testing.T) {
		for _, body := range []string{`{"jsonrpc":"1.0","id":8,"method":"ping"}`, `{"id":8,"method":"ping"}`, `"ping"`, `{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}`} {
			wantError(t, tg.post(t, body, hs...), http.StatusBadRequest, schema.CodeInvalidRequest)
		}
	})

	t.Run("null id", func(t *testing.T) {
		wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":null,"method":"ping"}`, hs...), http.StatusBadRequest, schema.CodeInvalidRequest)
	})

	t.Run("Origin", func(t *testing.T) {
		wantError(t, tg.post(t, echo, append(hs, "Origin", "http://attacker.example")...), http.StatusForbidden, schema.CodeInvalidRequest)
		wantResult(t, tg.post(t, echo, append(hs, "Origin", "http://localhost:3000")...))
	})

	t.Run("HTTP method", func(t *testing.T) {
		r := tg.do(t, http.MethodPut, tg.url, echo, hs...)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST, DELETE" {
			t.Errorf("PUT: status %d Allow %q, want 405 and GET, POST, DELETE", r.status, r.header.Get("Allow"))
		}
	})
}
