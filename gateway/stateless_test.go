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

// statelessMeta is the _meta a stateless (2026-07-28) client puts in
// every request.
const statelessMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"gateway-test","version":"1"},` +
	`"io.modelcontextprotocol/clientCapabilities":{}}`

// statelessBody is a stateless request: params (a JSON object, "" for
// none) with statelessMeta added.
func statelessBody(id int, method, params string) string {
	if params == "" || params == "{}" {
		params = "{" + statelessMeta + "}"
	} else {
		params = strings.TrimSuffix(params, "}") + "," + statelessMeta + "}"
	}
	b, _ := json.Marshal(id)
	return `{"jsonrpc":"2.0","id":` + string(b) + `,"method":"` + method + `","params":` + params + `}`
}

// statelessHeaders are the request metadata headers of a stateless
// request of method on name ("" for a method without one).
func statelessHeaders(method, name string) []string {
	hs := []string{"MCP-Protocol-Version", "2026-07-28", "Mcp-Method", method}
	if name != "" {
		hs = append(hs, "Mcp-Name", name)
	}
	return hs
}

// wantComplete checks that a stateless result is a final one
// (resultType "complete") with the server's info in _meta, and returns
// it decoded.
func wantComplete(t *testing.T, result json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var res map[string]json.RawMessage
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatal(err)
	}
	if string(res["resultType"]) != `"complete"` {
		t.Errorf("resultType %s, want \"complete\": %s", res["resultType"], result)
	}
	var meta map[string]schema.Implementation
	if err := json.Unmarshal(res["_meta"], &meta); err != nil || meta[schema.MetaServerInfo].Name != "gw-stateless" {
		t.Errorf("_meta %s: want the server's info (%v)", res["_meta"], err)
	}
	return res
}

// TestStateless checks the stateless revision 2026-07-28: no session, the
// revision and client capabilities in each request's _meta, and the
// method and target mirrored in headers. server/discover lists the
// served revisions and capabilities; tools/list is a final result with
// cache hints (ttlMs, cacheScope); tools/call reaches the worker with no
// session and the stateless revision, and answers a final result, after
// the worker's progress on an SSE response when there is some; a worker's
// request to the client is refused to the worker (-32601), never sent;
// closing a call's response is its cancellation, passed to the worker by
// the request's key; a stray Mcp-Session-Id is ignored and none is minted.
func TestStateless(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{ServerInfo: schema.Implementation{Name: "gw-stateless", Version: "1"}})

	t.Run("server/discover", func(t *testing.T) {
		r := tg.post(t, statelessBody(1, "server/discover", ""), statelessHeaders("server/discover", "")...)
		m := wantResult(t, r)
		res := wantComplete(t, m.Result)
		var versions []string
		if err := json.Unmarshal(res["supportedVersions"], &versions); err != nil || !equal(versions, schema.SupportedVersions()) {
			t.Errorf("supportedVersions %s, want %v", res["supportedVersions"], schema.SupportedVersions())
		}
		var caps map[string]json.RawMessage
		if err := json.Unmarshal(res["capabilities"], &caps); err != nil || caps["tools"] == nil {
			t.Errorf("capabilities %s", res["capabilities"])
		}
		if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
			t.Errorf("a stateless request was given session %q", sid)
		}
	})

	t.Run("tools/list", func(t *testing.T) {
		m := wantResult(t, tg.post(t, statelessBody(2, "tools/list", ""), statelessHeaders("tools/list", "")...))
		res := wantComplete(t, m.Result)
		if string(res["ttlMs"]) != "60000" || string(res["cacheScope"]) != `"public"` {
			t.Errorf("cache hints ttlMs %s cacheScope %s", res["ttlMs"], res["cacheScope"])
		}
		var tools []schema.Tool
		if err := json.Unmarshal(res["tools"], &tools); err != nil || len(tools) != len(testTools) {
			t.Errorf("tools %s", res["tools"])
		}
	})

	t.Run("tools/call", func(t *testing.T) {
		done := tg.postAsync(context.Background(), statelessBody(3, "tools/call", `{"name":"hold","arguments":{"n":1}}`),
			statelessHeaders("tools/call", "hold")...)
		h := tg.awaitHeld(t)
		if env := h.call.Env; env.Session != "" || env.Revision != "2026-07-28" || env.RequestID != "3" {
			t.Errorf("envelope session %q revision %q request %q", env.Session, env.Revision, env.RequestID)
		}
		h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "stateless"}}}
		r := await(t, done, "the call's response")
		m := wantResult(t, r)
		res := wantComplete(t, m.Result)
		if toolText(t, m.Result) != "stateless" || res["ttlMs"] != nil {
			t.Errorf("result %s: want the worker's, with no cache hints", m.Result)
		}
		if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
			t.Errorf("a stateless call was given session %q", sid)
		}
	})

	t.Run("progress", func(t *testing.T) {
		body := strings.Replace(statelessBody(4, "tools/call", `{"name":"progress","arguments":{}}`), `"_meta":{`, `"_meta":{"progressToken":"p4",`, 1)
		r := tg.post(t, body, statelessHeaders("tools/call", "progress")...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		evs := parseSSE(r.body)
		if len(evs) != 2 {
			t.Fatalf("want a notification and the result: %q", r.body)
		}
		if n := decode(t, []byte(evs[0].data)); n.Method != schema.NotificationProgress || !strings.Contains(string(n.Params), `"progressToken":"p4"`) {
			t.Errorf("first event %s", evs[0].data)
		}
		m := decode(t, []byte(evs[1].data))
		wantComplete(t, m.Result)
		if toolText(t, m.Result) != "done" {
			t.Errorf("result %s", m.Result)
		}
	})

	t.Run("SSE response not buffered by proxies", func(t *testing.T) {
		r := tg.post(t, strings.Replace(statelessBody(8, "tools/call", `{"name":"progress","arguments":{}}`), `"_meta":{`, `"_meta":{"progressToken":"p8",`, 1),
			statelessHeaders("tools/call", "progress")...)
		if r.header.Get("Content-Type") != "text/event-stream" || r.header.Get("X-Accel-Buffering") != "no" {
			t.Errorf("Content-Type %q, X-Accel-Buffering %q", r.header.Get("Content-Type"), r.header.Get("X-Accel-Buffering"))
		}
	})

	t.Run("no requests to the client", func(t *testing.T) {
		r := tg.post(t, statelessBody(5, "tools/call", `{"name":"roots","arguments":{}}`), statelessHeaders("tools/call", "roots")...)
		a := await(t, tg.answers, "the refusal at the worker")
		if !a.GatewayError || a.Message.Error == nil || a.Message.Error.Code != schema.CodeMethodNotFound {
			t.Fatalf("answer at the worker: gateway error %v, error %+v", a.GatewayError, a.Message.Error)
		}
		m := wantResult(t, r) // JSON: no request went out on a stream
		wantComplete(t, m.Result)
	})

	t.Run("closing the response cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := tg.postAsync(ctx, statelessBody(6, "tools/call", `{"name":"hold","arguments":{}}`), statelessHeaders("tools/call", "hold")...)
		h := tg.awaitHeld(t)
		cancel()
		await(t, done, "the cancelled request")
		c := await(t, tg.w.Cancels(), "the cancellation at the worker")
		if c.Session != schema.CancelByKey || c.RequestID != h.call.Env.Key {
			t.Fatalf("cancel %+v, want session %q request %q", c, schema.CancelByKey, h.call.Env.Key)
		}
		if err := await(t, h.ended, "the end of the cancelled handler"); err == nil {
			t.Fatal("the handler was released, not cancelled")
		}
	})

	t.Run("stray session id ignored", func(t *testing.T) {
		r := tg.post(t, statelessBody(7, "tools/list", ""), append(statelessHeaders("tools/list", ""), "Mcp-Session-Id", "0123456789abcdef0123456789abcdef")...)
		wantComplete(t, wantResult(t, r).Result)
		if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
			t.Errorf("session id %q echoed", sid)
		}
	})
}

// TestStatelessRefusals checks what the stateless revision refuses:
// request metadata headers missing or not matching the body (400,
// -32020), an unsupported revision (400, -32022 listing the supported
// ones), _meta without client capabilities (400, -32602), an unknown
// method (404, -32601), a JSON-RPC response (400), GET and DELETE (405
// with Allow: POST); a notification is accepted with 202 and no body.
func TestStatelessRefusals(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	call := statelessBody(1, "tools/call", `{"name":"echo","arguments":{"text":"x"}}`)

	mismatches := []struct {
		name    string
		headers []string
	}{
		{"no MCP-Protocol-Version", []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}},
		{"MCP-Protocol-Version not the body's", []string{"MCP-Protocol-Version", "2025-11-25", "Mcp-Method", "tools/call", "Mcp-Name", "echo"}},
		{"no Mcp-Method", []string{"MCP-Protocol-Version", "2026-07-28", "Mcp-Name", "echo"}},
		{"Mcp-Method not the body's", statelessHeaders("tools/list", "echo")},
		{"no Mcp-Name", statelessHeaders("tools/call", "")},
		{"Mcp-Name not the body's", statelessHeaders("tools/call", "fail")},
		{"Mcp-Name malformed", statelessHeaders("tools/call", "=?base64?***?=")},
	}
	for _, c := range mismatches {
		t.Run(c.name, func(t *testing.T) {
			if m := wantError(t, tg.post(t, call, c.headers...), http.StatusBadRequest, schema.CodeHeaderMismatch); string(m.ID) != "1" {
				t.Errorf("id %s", m.ID)
			}
		})
	}

	t.Run("Mcp-Name in base64", func(t *testing.T) {
		// "echo" in the sentinel form is the same name.
		wantResult(t, tg.post(t, call, statelessHeaders("tools/call", "=?base64?ZWNobw==?=")...))
	})

	t.Run("unsupported revision", func(t *testing.T) {
		body := strings.ReplaceAll(statelessBody(2, "tools/list", ""), "2026-07-28", "2099-01-01")
		m := wantError(t, tg.post(t, body, "MCP-Protocol-Version", "2099-01-01", "Mcp-Method", "tools/list"), http.StatusBadRequest, schema.CodeUnsupportedVersion)
		var data struct {
			Supported []string `json:"supported"`
		}
		if err := json.Unmarshal(m.Error.Data, &data); err != nil || !equal(data.Supported, schema.SupportedVersions()) {
			t.Errorf("error data %s, want the supported versions", m.Error.Data)
		}
	})

	t.Run("no client capabilities", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		wantError(t, tg.post(t, body, statelessHeaders("tools/list", "")...), http.StatusBadRequest, schema.CodeInvalidParams)
	})

	t.Run("unknown method", func(t *testing.T) {
		m := wantError(t, tg.post(t, statelessBody(4, "no/such", ""), statelessHeaders("no/such", "")...), http.StatusNotFound, schema.CodeMethodNotFound)
		if string(m.ID) != "4" {
			t.Errorf("id %s", m.ID)
		}
		// initialize is not part of the revision.
		wantError(t, tg.post(t, statelessBody(5, "initialize", ""), statelessHeaders("initialize", "")...), http.StatusNotFound, schema.CodeMethodNotFound)
	})

	t.Run("response", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":"x","result":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		if r := tg.post(t, body, "MCP-Protocol-Version", "2026-07-28"); r.status != http.StatusBadRequest {
			t.Errorf("a response: status %d, want 400: %s", r.status, r.body)
		}
	})

	t.Run("notification", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","method":"notifications/roots/list_changed","params":{` + statelessMeta + `}}`
		if r := tg.post(t, body, statelessHeaders("notifications/roots/list_changed", "")...); r.status != http.StatusAccepted || len(r.body) != 0 {
			t.Errorf("status %d body %q, want 202 and none", r.status, r.body)
		}
	})

	t.Run("notification headers validated", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","method":"notifications/roots/list_changed","params":{` + statelessMeta + `}}`
		wantError(t, tg.post(t, body, statelessHeaders("tools/call", "")...), http.StatusBadRequest, schema.CodeHeaderMismatch)
	})

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			r := tg.do(t, method, tg.url, "", "MCP-Protocol-Version", "2026-07-28", "Accept", "application/json, text/event-stream")
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
				t.Errorf("status %d, Allow %q, want 405 and POST", r.status, r.header.Get("Allow"))
			}
		})
	}
}
