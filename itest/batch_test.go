package itest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/gateway"
)

// TestBatches2025_03_26: a session that negotiated 2025-03-26 may send
// JSON-RPC batches; requests (tool calls through the workers included) are
// answered in one array in order, a bad element gets its own error, a batch
// of notifications gets 202; other revisions, empty batches and a batched
// initialize are refused.
func TestBatches2025_03_26(t *testing.T) {
	s := newStack(t, gateway.Config{})
	r := post(t, s.url, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}`)
	var init struct {
		Result struct{ ProtocolVersion string } `json:"result"`
	}
	if err := json.Unmarshal(r.body, &init); err != nil || init.Result.ProtocolVersion != "2025-03-26" {
		t.Fatalf("initialize for 2025-03-26: %s (%v)", r.body, err)
	}
	sid := r.header.Get("Mcp-Session-Id")

	r = post(t, s.url, `[
		{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"text":"one"}}},
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"2.0","id":2,"method":"ping"},
		{"foo":1},
		{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}},
		{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}
	]`, "Mcp-Session-Id", sid)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("batch: status %d, type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var resps []struct {
		ID     json.RawMessage     `json:"id"`
		Result json.RawMessage     `json:"result"`
		Error  *struct{ Code int } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &resps); err != nil || len(resps) != 5 {
		t.Fatalf("want 5 responses (the notification gets none): %s (%v)", r.body, err)
	}
	want := []struct {
		id, contains string
		code         int
	}{{`"a"`, `"text":"one"`, 0}, {`2`, `{}`, 0}, {`null`, ``, -32600}, {`3`, `"sum":3`, 0}, {`4`, ``, -32600}}
	for i, w := range want {
		got := resps[i]
		if string(got.ID) != w.id {
			t.Errorf("response %d has id %s, want %s", i, got.ID, w.id)
		}
		if w.code != 0 {
			if got.Error == nil || got.Error.Code != w.code {
				t.Errorf("response %d: want error %d, got %s / %+v", i, w.code, got.Result, got.Error)
			}
		} else if got.Error != nil || !json.Valid(got.Result) || !strings.Contains(string(got.Result), w.contains) {
			t.Errorf("response %d: result %s, error %+v; want one holding %s", i, got.Result, got.Error, w.contains)
		}
	}

	if r = post(t, s.url, `[{"jsonrpc":"2.0","method":"notifications/initialized"}]`, "Mcp-Session-Id", sid); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Fatalf("batch of notifications: status %d: %s", r.status, r.body)
	}
	if r = post(t, s.url, `[]`, "Mcp-Session-Id", sid); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "-32600") {
		t.Fatalf("empty batch: status %d: %s", r.status, r.body)
	}
	newer := initSession(t, s.url) // 2025-11-25
	if r = post(t, s.url, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "Mcp-Session-Id", newer); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "-32600") {
		t.Fatalf("batch on a 2025-11-25 session: status %d: %s", r.status, r.body)
	}
}
