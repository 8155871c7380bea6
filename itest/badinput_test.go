package itest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
)

// TestBadInput sends every kind of malformed or refused request to a real
// gateway over HTTP and checks the HTTP status and the JSON-RPC error code.
// After them, the same session still works.
func TestBadInput(t *testing.T) {
	s := newStack(t, gateway.Config{})
	sid := initSession(t, s.url)
	deleted := initSession(t, s.url)
	req, _ := http.NewRequest(http.MethodDelete, s.url, nil)
	if r := do(t, req, "Mcp-Session-Id", deleted); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: status %d: %s", r.status, r.body)
	}

	const call = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` +
		strings.Repeat("a", 4<<20) + `"}}}`
	deep := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`
	cases := []struct {
		name    string
		method  string
		body    string
		headers []string
		status  int
		code    int // JSON-RPC error code; 0 for none
		id      string
	}{
		{name: "malformed JSON", body: `{"jsonrpc":"2.0","id":1,"method":`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32700},
		{name: "not JSON at all", body: `hello`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32700},
		{name: "empty body", body: ``, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32700},
		{name: "not JSON-RPC", body: `{"hello":"world"}`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "wrong jsonrpc version", body: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "id of wrong type", body: `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "scalar JSON", body: `42`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "batch", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "too deep", body: deep, headers: []string{"Mcp-Session-Id", sid}, status: 400, code: -32600},
		{name: "unknown method", body: `{"jsonrpc":"2.0","id":"m1","method":"tools/frobnicate"}`, headers: []string{"Mcp-Session-Id", sid}, status: 200, code: -32601, id: `"m1"`},
		{name: "unknown tool", body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope","arguments":{}}}`, headers: []string{"Mcp-Session-Id", sid}, status: 200, code: -32602, id: "3"},
		{name: "tools/call without name", body: `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{}}`, headers: []string{"Mcp-Session-Id", sid}, status: 200, code: -32602, id: "4"},
		{name: "arguments not an object", body: `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":[1]}}`, headers: []string{"Mcp-Session-Id", sid}, status: 200, code: -32602, id: "5"},
		{name: "initialize without params", body: `{"jsonrpc":"2.0","id":6,"method":"initialize"}`, status: 200, code: -32602, id: "6"},
		{name: "body over 4 MiB", body: big, headers: []string{"Mcp-Session-Id", sid}, status: 413, code: -32600},
		{name: "missing session id", body: call, status: 400, code: -32600, id: "7"},
		{name: "unknown session", body: call, headers: []string{"Mcp-Session-Id", "0123456789abcdef0123456789abcdef"}, status: 404, code: -32600, id: "7"},
		{name: "malformed session id", body: call, headers: []string{"Mcp-Session-Id", "../../etc>"}, status: 404, code: -32600, id: "7"},
		{name: "deleted session", body: call, headers: []string{"Mcp-Session-Id", deleted}, status: 404, code: -32600, id: "7"},
		{name: "unsupported protocol version", body: call, headers: []string{"Mcp-Session-Id", sid, "Mcp-Protocol-Version", "1999-01-01"}, status: 400, code: -32600, id: "7"},
		{name: "wrong content type", body: call, headers: []string{"Mcp-Session-Id", sid, "Content-Type", "text/plain"}, status: 415, code: -32600},
		{name: "unacceptable Accept", body: call, headers: []string{"Mcp-Session-Id", sid, "Accept", "text/html"}, status: 406, code: -32600},
		{name: "foreign Origin", body: call, headers: []string{"Mcp-Session-Id", sid, "Origin", "https://evil.example"}, status: 403, code: -32600},
		{name: "PUT", method: http.MethodPut, body: call, headers: []string{"Mcp-Session-Id", sid}, status: 405, code: -32600},
		{name: "GET without event-stream Accept", method: http.MethodGet, headers: []string{"Mcp-Session-Id", sid, "Accept", "application/json"}, status: 406, code: -32600},
		{name: "GET unknown session", method: http.MethodGet, headers: []string{"Mcp-Session-Id", deleted, "Accept", "text/event-stream"}, status: 404, code: -32600},
		{name: "DELETE unknown session", method: http.MethodDelete, headers: []string{"Mcp-Session-Id", deleted}, status: 404, code: -32600},
		{name: "DELETE without session", method: http.MethodDelete, status: 400, code: -32600},
		{name: "notification accepted", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, headers: []string{"Mcp-Session-Id", sid}, status: 202},
		{name: "loopback Origin accepted", body: `{"jsonrpc":"2.0","id":8,"method":"ping"}`, headers: []string{"Mcp-Session-Id", sid, "Origin", "http://localhost:3000"}, status: 200, id: "8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, s.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			r := do(t, req, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if tc.status == http.StatusAccepted {
				if len(r.body) != 0 {
					t.Fatalf("202 with a body: %s", r.body)
				}
				return
			}
			var resp struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Result  json.RawMessage `json:"result"`
				Error   *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, r.body)
			}
			if resp.JSONRPC != "2.0" {
				t.Fatalf("jsonrpc = %q in %s", resp.JSONRPC, r.body)
			}
			wantID := tc.id
			if wantID == "" {
				wantID = "null"
			}
			if string(resp.ID) != wantID {
				t.Fatalf("id = %s, want %s", resp.ID, wantID)
			}
			if tc.code == 0 {
				if resp.Error != nil || resp.Result == nil {
					t.Fatalf("want a result, got %s", r.body)
				}
				return
			}
			if resp.Error == nil || resp.Error.Code != tc.code || resp.Error.Message == "" {
				t.Fatalf("error = %s, want code %d with a message", r.body, tc.code)
			}
		})
	}

	// The gateway is unharmed and the session still serves calls.
	r := post(t, s.url, call, "Mcp-Session-Id", sid)
	if r.status != 200 || !strings.Contains(string(r.body), `"text":"x"`) {
		t.Fatalf("after bad input: status %d: %s", r.status, r.body)
	}
}

// TestSSEResponse: a client that accepts only event streams gets its
// answer as one SSE event.
func TestSSEResponse(t *testing.T) {
	s := newStack(t, gateway.Config{})
	sid := initSession(t, s.url)
	r := post(t, s.url, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"sse"}}}`,
		"Mcp-Session-Id", sid, "Accept", "text/event-stream")
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", r.status, r.header.Get("Content-Type"))
	}
	body := string(r.body)
	data, ok := strings.CutPrefix(body, "event: message\ndata: ")
	if !ok || !strings.HasSuffix(data, "\n\n") {
		t.Fatalf("not one SSE message event: %q", body)
	}
	var resp struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &resp); err != nil || len(resp.Result.Content) != 1 || resp.Result.Content[0].Text != "sse" {
		t.Fatalf("event data %q: %v", data, err)
	}
}
