package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestAppendCompleteResult(t *testing.T) {
	info := []byte(`{"name":"s","version":"1"}`)
	hints := &schema.CacheHints{TTLMs: 5000, Scope: "public"}
	for _, tc := range []struct {
		in    string
		hints *schema.CacheHints
		want  string
	}{
		{`{}`, nil, `{"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}}}`},
		{`{"tools":[]}`, hints, `{"resultType":"complete","ttlMs":5000,"cacheScope":"public","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}},"tools":[]}`},
		{`{"resultType":"input_required","_meta":{"k":1}}`, nil, `{"resultType":"input_required","_meta":{"k":1}}`},
		{`{"ttlMs":0,"x":1}`, hints, `{"resultType":"complete","cacheScope":"public","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}},"ttlMs":0,"x":1}`},
	} {
		got := schema.AppendCompleteResult(nil, []byte(tc.in), tc.hints, info)
		if string(got) != tc.want || !json.Valid(got) {
			t.Errorf("AppendCompleteResult(%s) =\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
	if got := schema.AppendCompleteResult(nil, []byte(`[1]`), nil, info); got != nil {
		t.Errorf("a non-object result gave %s", got)
	}
}

func TestParseRequestMeta(t *testing.T) {
	m, ok := schema.ParseRequestMeta([]byte(`{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/logLevel":"info","progressToken":7}}`))
	if !ok || m.ProtocolVersion != "2026-07-28" || string(m.ClientCapabilities) != `{"sampling":{}}` || m.LogLevel != "info" || string(m.ProgressToken) != "7" {
		t.Fatalf("ParseRequestMeta = %+v, %v", m, ok)
	}
	if _, ok := schema.ParseRequestMeta([]byte(`{"_meta":[]}`)); ok {
		t.Error("a _meta that is not an object was accepted")
	}
	if m, ok := schema.ParseRequestMeta(nil); !ok || m.ProtocolVersion != "" {
		t.Error("no params")
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{"us-west1": "us-west1", "=?base64?SGVsbG8=": "=?base64?SGVsbG8=", "SGVsbG8=": "SGVsbG8=", "=?base64?SGVsbG8sIOS4lueVjA==?=": "Hello, 世界", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=": "=?base64?literal?="} {
		if got, ok := schema.DecodeHeaderValue(in); !ok || got != want {
			t.Errorf("DecodeHeaderValue(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"=?base64?!!?=", "=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?=", "a\x01b", "caf\xc3\xa9"} {
		if got, ok := schema.DecodeHeaderValue(bad); ok {
			t.Errorf("DecodeHeaderValue(%q) = %q, want malformed", bad, got)
		}
	}
	var e struct {
		Supported []string `json:"supported"`
	}
	err := schema.UnsupportedVersionError("2099-01-01")
	if err.Code != -32022 || json.Unmarshal(err.Data, &e) != nil || len(e.Supported) != 4 || e.Supported[0] != "2026-07-28" {
		t.Errorf("UnsupportedVersionError = %+v", err)
	}
}

func TestAppendCompleteResultInterim(t *testing.T) {
	got := schema.AppendCompleteResult(nil, []byte(`{"resultType":"input_required","requestState":"s"}`), &schema.CacheHints{TTLMs: 1, Scope: "private"}, []byte(`{"name":"s","version":"1"}`))
	if string(got) != `{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}},"resultType":"input_required","requestState":"s"}` {
		t.Errorf("an interim result got %s; want no cache hints", got)
	}
}

func TestParseRequestMetaTraceContext(t *testing.T) {
	m, ok := schema.ParseRequestMeta([]byte(`{"name":"echo","_meta":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v","progressToken":1}}`))
	if !ok || m.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || m.TraceState != "k=v" || string(m.ProgressToken) != "1" {
		t.Fatalf("ParseRequestMeta = %+v, %v", m, ok)
	}
	if m, _ := schema.ParseRequestMeta([]byte(`{"_meta":{"traceparent":5}}`)); m.TraceParent != "" {
		t.Errorf("a traceparent that is not a string read as %q", m.TraceParent)
	}
}

// A _meta string member read twice keeps the last string value, a value
// of another type leaving it as it was (json.Unmarshal's rule); params
// without _meta are read without an allocation.
func TestParseRequestMetaRepeatedAndAllocs(t *testing.T) {
	m, ok := schema.ParseRequestMeta([]byte(`{"_meta":{"io.modelcontextprotocol/logLevel":"info","io.modelcontextprotocol/logLevel":3,"tracestate":"a","tracestate":"b","traceparent":null}}`))
	if !ok || m.LogLevel != "info" || m.TraceState != "b" || m.TraceParent != "" {
		t.Errorf("ParseRequestMeta = %+v, %v", m, ok)
	}
	params := []byte(`{"name":"echo","arguments":{"text":"hello"}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = schema.ParseRequestMeta(params) }); n != 0 {
		t.Errorf("params without _meta: %v allocations, want 0", n)
	}
}
