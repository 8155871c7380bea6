package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestDecodeMessageValid(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kind    schema.Kind
		id      string // raw id bytes, "" for none
		method  string
		params  string
		result  string
		errCode int
	}{
		{"request int id", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, schema.KindRequest, `1`, "tools/list", "", "", 0},
		{"request params object", `{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"x","arguments":{"a":[1,2]}}}`, schema.KindRequest, `"abc"`, "tools/call", `{"name":"x","arguments":{"a":[1,2]}}`, "", 0},
		{"request params array", `{"jsonrpc":"2.0","id":2,"method":"m","params":[1,"two",null]}`, schema.KindRequest, `2`, "m", `[1,"two",null]`, "", 0},
		{"request params empty object", `{"jsonrpc":"2.0","id":2,"method":"m","params":{}}`, schema.KindRequest, `2`, "m", `{}`, "", 0},
		{"request params null", `{"jsonrpc":"2.0","id":3,"method":"ping","params":null}`, schema.KindRequest, `3`, "ping", "", "", 0},
		{"string id with escapes", `{"jsonrpc":"2.0","id":"a\"b\u00e9\\","method":"m"}`, schema.KindRequest, `"a\"b\u00e9\\"`, "m", "", "", 0},
		{"string id 007", `{"jsonrpc":"2.0","id":"007","method":"m"}`, schema.KindRequest, `"007"`, "m", "", "", 0},
		{"empty string id", `{"jsonrpc":"2.0","id":"","method":"m"}`, schema.KindRequest, `""`, "m", "", "", 0},
		{"float id 1.0", `{"jsonrpc":"2.0","id":1.0,"method":"m"}`, schema.KindRequest, `1.0`, "m", "", "", 0},
		{"float id 1.50", `{"jsonrpc":"2.0","id":1.50,"method":"m"}`, schema.KindRequest, `1.50`, "m", "", "", 0},
		{"negative id", `{"jsonrpc":"2.0","id":-5,"method":"m"}`, schema.KindRequest, `-5`, "m", "", "", 0},
		{"zero id", `{"jsonrpc":"2.0","id":0,"method":"m"}`, schema.KindRequest, `0`, "m", "", "", 0},
		{"negative zero id", `{"jsonrpc":"2.0","id":-0,"method":"m"}`, schema.KindRequest, `-0`, "m", "", "", 0},
		{"exponent id", `{"jsonrpc":"2.0","id":1E+3,"method":"m"}`, schema.KindRequest, `1E+3`, "m", "", "", 0},
		{"big id", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}`, schema.KindRequest, `123456789012345678901234567890`, "m", "", "", 0},
		{"uint64 max id", `{"jsonrpc":"2.0","id":18446744073709551615,"method":"m"}`, schema.KindRequest, `18446744073709551615`, "m", "", "", 0},
		{"big negative float id", `{"jsonrpc":"2.0","id":-1.5e300,"method":"m"}`, schema.KindRequest, `-1.5e300`, "m", "", "", 0},
		{"out of float range id", `{"jsonrpc":"2.0","id":1e999,"method":"m"}`, schema.KindRequest, `1e999`, "m", "", "", 0},
		{"whitespace everywhere", " \n\t{ \"jsonrpc\" : \"2.0\" ,\n \"id\" :  7 , \"method\":\"m\" }\r\n ", schema.KindRequest, `7`, "m", "", "", 0},
		{"unknown fields ignored", `{"jsonrpc":"2.0","id":1,"method":"m","extra":{"x":[1]}}`, schema.KindRequest, `1`, "m", "", "", 0},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, schema.KindNotification, "", "notifications/initialized", "", "", 0},
		{"notification with params", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, schema.KindNotification, "", "notifications/progress", `{"progress":1}`, "", 0},
		{"response object result", `{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`, schema.KindResponse, `1`, "", "", `{"ok":true}`, 0},
		{"response null result", `{"jsonrpc":"2.0","id":"r","result":null}`, schema.KindResponse, `"r"`, "", "", `null`, 0},
		{"response scalar result", `{"jsonrpc":"2.0","id":9.0,"result":0}`, schema.KindResponse, `9.0`, "", "", `0`, 0},
		{"response error", `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"nope","data":{"a":1}}}`, schema.KindResponse, `"x"`, "", "", "", -32601},
		{"response error extra fields", `{"jsonrpc":"2.0","id":4,"error":{"code":-32000,"message":"busy","other":1}}`, schema.KindResponse, `4`, "", "", "", -32000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := schema.DecodeMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if m.Kind() != tt.kind {
				t.Errorf("Kind = %d, want %d", m.Kind(), tt.kind)
			}
			if m.JSONRPC != schema.Version {
				t.Errorf("JSONRPC = %q", m.JSONRPC)
			}
			if string(m.ID) != tt.id {
				t.Errorf("ID = %q, want %q", m.ID, tt.id)
			}
			if m.Method != tt.method {
				t.Errorf("Method = %q, want %q", m.Method, tt.method)
			}
			if string(m.Params) != tt.params {
				t.Errorf("Params = %q, want %q", m.Params, tt.params)
			}
			if string(m.Result) != tt.result {
				t.Errorf("Result = %q, want %q", m.Result, tt.result)
			}
			if tt.errCode != 0 {
				if m.Error == nil || m.Error.Code != tt.errCode {
					t.Errorf("Error = %+v, want code %d", m.Error, tt.errCode)
				}
			} else if m.Error != nil {
				t.Errorf("unexpected Error %+v", m.Error)
			}
			if tt.id == "" {
				return
			}
			// The id goes back byte for byte.
			got := schema.AppendResult(nil, m.ID, []byte(`true`))
			want := `{"jsonrpc":"2.0","id":` + tt.id + `,"result":true}`
			if string(got) != want {
				t.Errorf("AppendResult = %s, want %s", got, want)
			}
			var back struct {
				ID json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal(got, &back); err != nil || string(back.ID) != tt.id {
				t.Errorf("echoed id = %s (%v), want %s", back.ID, err, tt.id)
			}
		})
	}
}

func TestDecodeMessageInvalid(t *testing.T) {
	const parse, invalid = schema.CodeParseError, schema.CodeInvalidRequest
	tests := []struct {
		name string
		in   string
		code int
	}{
		{"empty", "", parse},
		{"whitespace only", " \n\t\r ", parse},
		{"not json", "hello", parse},
		{"truncated object", `{"jsonrpc":"2.0"`, parse},
		{"trailing comma", `{"jsonrpc":"2.0","method":"m",}`, parse},
		{"single quotes", `{'jsonrpc':'2.0'}`, parse},
		{"trailing garbage", `{"jsonrpc":"2.0","method":"m"}x`, parse},
		{"two objects", `{"jsonrpc":"2.0","method":"m"}{}`, parse},
		{"extra close", `{"jsonrpc":"2.0","method":"m"}}`, parse},
		{"raw control char", "{\"jsonrpc\":\"2.0\",\"method\":\"a\x01\"}", parse},
		{"broken array", `[1,`, parse},
		{"broken scalar", `tru`, parse},
		{"empty batch", `[]`, invalid},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"m"}]`, invalid},
		{"number", `42`, invalid},
		{"string", `"x"`, invalid},
		{"null", `null`, invalid},
		{"bool", `true`, invalid},
		{"empty object", `{}`, invalid},
		{"missing jsonrpc", `{"id":1,"method":"m"}`, invalid},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"m"}`, invalid},
		{"jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"m"}`, invalid},
		{"jsonrpc null", `{"jsonrpc":null,"id":1,"method":"m"}`, invalid},
		{"jsonrpc empty", `{"jsonrpc":"","id":1,"method":"m"}`, invalid},
		{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, invalid},
		{"method number", `{"jsonrpc":"2.0","id":1,"method":5}`, invalid},
		{"method object", `{"jsonrpc":"2.0","id":1,"method":{}}`, invalid},
		{"id true", `{"jsonrpc":"2.0","id":true,"method":"m"}`, invalid},
		{"id false", `{"jsonrpc":"2.0","id":false,"method":"m"}`, invalid},
		{"id object", `{"jsonrpc":"2.0","id":{"a":1},"method":"m"}`, invalid},
		{"id array", `{"jsonrpc":"2.0","id":[1],"method":"m"}`, invalid},
		{"params string", `{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}`, invalid},
		{"params number", `{"jsonrpc":"2.0","id":1,"method":"m","params":5}`, invalid},
		{"params bool", `{"jsonrpc":"2.0","method":"m","params":true}`, invalid},
		{"request with result", `{"jsonrpc":"2.0","id":1,"method":"m","result":1}`, invalid},
		{"request with error", `{"jsonrpc":"2.0","id":1,"method":"m","error":{"code":1,"message":"x"}}`, invalid},
		{"both result and error", `{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}`, invalid},
		{"response without id", `{"jsonrpc":"2.0","result":1}`, invalid},
		{"error response null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`, invalid},
		{"request with a null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, invalid},
		{"notification with a null id", `{"jsonrpc":"2.0","id":null,"method":"notifications/cancelled"}`, invalid},
		{"response without result or error", `{"jsonrpc":"2.0","id":1}`, invalid},
		{"null method response without result", `{"jsonrpc":"2.0","id":1,"method":null}`, invalid},
		{"error is a string", `{"jsonrpc":"2.0","id":1,"error":"boom"}`, invalid},
		{"error code is a string", `{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}`, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := schema.DecodeMessage([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeMessage accepted %s as %+v", tt.in, m)
			}
			if m != nil {
				t.Errorf("non-nil message with error")
			}
			var e *schema.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *schema.Error", err, err)
			}
			if e.Code != tt.code {
				t.Errorf("code = %d (%s), want %d", e.Code, e.Message, tt.code)
			}
			if e.Message == "" {
				t.Error("empty error message")
			}
			// The error itself must render as a valid JSON-RPC error reply.
			if out := schema.AppendError(nil, nil, e); !json.Valid(out) {
				t.Errorf("AppendError produced invalid JSON %s", out)
			}
		})
	}
}

func TestDecodeMessageBatchMentionsBatch(t *testing.T) {
	_, err := schema.DecodeMessage([]byte(` [{"jsonrpc":"2.0","method":"m"}] `))
	var e *schema.Error
	if !errors.As(err, &e) || e.Code != schema.CodeInvalidRequest {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(e.Message, "batch") {
		t.Errorf("message %q does not mention batch", e.Message)
	}
	if !errors.Is(err, schema.ErrBatch) {
		// The doc comment says ErrBatch is returned "wrapped in a *Error",
		// but *Error has no Unwrap, so errors.Is cannot find it.
		t.Fatalf("regression: jsonrpc.go DecodeMessage: errors.Is(err, ErrBatch) is false for a batch body although the doc says ErrBatch is wrapped")
	}
}

// JSON-RPC member names are case-sensitive; encoding/json's struct decoding is
// not.
func TestDecodeMessageMemberNamesAreCaseSensitive(t *testing.T) {
	for _, in := range []string{
		`{"JSONRPC":"2.0","method":"m"}`,
		`{"jsonrpc":"2.0","Method":"m"}`,
		`{"jsonrpc":"2.0","ID":1,"result":1}`,
		`{"jsonrpc":"2.0","id":1,"Result":1}`,
	} {
		if m, err := schema.DecodeMessage([]byte(in)); err == nil {
			t.Fatalf("regression: jsonrpc.go DecodeMessage: member names match case-insensitively: %s decodes as kind %d", in, m.Kind())
		}
	}
}

// Only space, tab, CR and LF are JSON whitespace.
func TestDecodeMessageNonJSONWhitespace(t *testing.T) {
	for _, in := range []string{
		"\v{\"jsonrpc\":\"2.0\",\"method\":\"m\"}",
		"\f{\"jsonrpc\":\"2.0\",\"method\":\"m\"}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"m\"}\u00a0",
		"\u0085{\"jsonrpc\":\"2.0\",\"method\":\"m\"}",
	} {
		_, err := schema.DecodeMessage([]byte(in))
		var e *schema.Error
		if err == nil {
			t.Fatalf("regression: jsonrpc.go DecodeMessage: bytes.TrimSpace strips non-JSON whitespace, so %q is accepted instead of -32700", in)
		}
		if !errors.As(err, &e) || e.Code != schema.CodeParseError {
			t.Errorf("%q: err = %v, want parse error", in, err)
		}
	}
}

// JSON-RPC 2.0: the error member MUST be an object with code and message.
func TestDecodeMessageErrorMustBeObject(t *testing.T) {
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":1,"error":null}`,
		`{"jsonrpc":"2.0","id":1,"error":{}}`,
	} {
		if m, err := schema.DecodeMessage([]byte(in)); err == nil {
			t.Fatalf("regression: jsonrpc.go DecodeMessage: %s is accepted as an error response with Error=%+v", in, *m.Error)
		}
	}
}

func TestMessageKindZero(t *testing.T) {
	var m schema.Message
	if m.Kind() != schema.KindInvalid {
		t.Errorf("zero Message Kind = %d", m.Kind())
	}
}

func TestIDValid(t *testing.T) {
	valid := []string{`1`, `-1`, `0`, `1.0`, `1e5`, `-2.5E-3`, `123456789012345678901234567890`, `""`, `"x"`, `"a\"b"`, `"\u00e9"`}
	invalid := []string{``, `null`, `true`, `false`, `{}`, `[]`, `"x`, `01`, `+1`, `.5`, `1.`, `-`, `'x'`, `1 2`, `"a"b`, `abc`}
	for _, s := range valid {
		if !schema.ID(s).Valid() {
			t.Errorf("ID(%s).Valid() = false", s)
		}
	}
	for _, s := range invalid {
		if schema.ID(s).Valid() {
			t.Errorf("ID(%s).Valid() = true", s)
		}
	}
}

func TestIDJSON(t *testing.T) {
	type wrap struct {
		ID schema.ID `json:"id"`
	}
	for _, raw := range []string{`1.0`, `"007"`, `-12`, `1E+3`} {
		var w wrap
		if err := json.Unmarshal([]byte(`{"id":`+raw+`}`), &w); err != nil {
			t.Fatal(err)
		}
		if string(w.ID) != raw || w.ID.String() != raw {
			t.Errorf("unmarshal %s: got %q", raw, w.ID)
		}
		out, err := json.Marshal(w)
		if err != nil || string(out) != `{"id":`+raw+`}` {
			t.Errorf("marshal %s: got %s %v", raw, out, err)
		}
	}
	w := wrap{ID: schema.ID("5")}
	if err := json.Unmarshal([]byte(`{"id":null}`), &w); err != nil || w.ID != nil {
		t.Errorf("null id: %q %v", w.ID, err)
	}
	out, err := json.Marshal(wrap{})
	if err != nil || string(out) != `{"id":null}` {
		t.Errorf("zero id marshals to %s %v", out, err)
	}
}

func TestAppendResult(t *testing.T) {
	prefix := []byte("prefix:")
	out := schema.AppendResult(append([]byte(nil), prefix...), schema.ID(`"a"`), []byte(`{"content":[{"type":"text","text":"hi"}]}`))
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("prefix lost: %s", out)
	}
	body := out[len(prefix):]
	want := map[string]any{
		"jsonrpc": "2.0",
		"id":      "a",
		"result":  map[string]any{"content": []any{map[string]any{"type": "text", "text": "hi"}}},
	}
	assertJSON(t, body, want)
	assertJSON(t, schema.AppendResult(nil, nil, []byte(`1`)), map[string]any{"jsonrpc": "2.0", "id": nil, "result": 1.0})
}

func TestAppendError(t *testing.T) {
	tests := []struct {
		name string
		id   schema.ID
		err  *schema.Error
		want map[string]any
	}{
		{"nil id", nil, &schema.Error{Code: schema.CodeParseError, Message: "parse error"},
			map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700.0, "message": "parse error"}}},
		{"string id with data", schema.ID(`"q"`), &schema.Error{Code: -32602, Message: `bad "x" <y>`, Data: json.RawMessage(` {"field": "x"} `)},
			map[string]any{"jsonrpc": "2.0", "id": "q", "error": map[string]any{"code": -32602.0, "message": `bad "x" <y>`, "data": map[string]any{"field": "x"}}}},
		{"invalid data is dropped", schema.ID(`7`), &schema.Error{Code: -32603, Message: "internal", Data: json.RawMessage(`{nope`)},
			map[string]any{"jsonrpc": "2.0", "id": 7.0, "error": map[string]any{"code": -32603.0, "message": "internal"}}},
		{"overloaded", schema.ID(`1.0`), schema.OverloadedError("queue full", 250),
			map[string]any{"jsonrpc": "2.0", "id": 1.0, "error": map[string]any{"code": -32000.0, "message": "server overloaded: queue full",
				"data": map[string]any{"reason": "queue full", "retryAfterMs": 250.0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := schema.AppendError(nil, tt.id, tt.err)
			assertJSON(t, out, tt.want)
			if tt.id == nil && !bytes.Contains(out, []byte(`"id":null`)) {
				t.Errorf("nil id not written as null: %s", out)
			}
			if tt.id != nil && !bytes.Contains(out, append([]byte(`"id":`), tt.id...)) {
				t.Errorf("id not byte-exact: %s", out)
			}
			// The output is itself a valid response for DecodeMessage.
			if tt.id != nil {
				m, err := schema.DecodeMessage(out)
				if err != nil || m.Kind() != schema.KindResponse || m.Error.Code != tt.err.Code {
					t.Errorf("DecodeMessage(%s) = %+v, %v", out, m, err)
				}
			}
		})
	}
}

func TestAppendNotification(t *testing.T) {
	tests := []struct {
		method string
		params string
		want   map[string]any
	}{
		{schema.NotificationProgress, `{"progressToken":"t","progress":0.5}`,
			map[string]any{"jsonrpc": "2.0", "method": "notifications/progress", "params": map[string]any{"progressToken": "t", "progress": 0.5}}},
		{schema.NotificationToolListChanged, "",
			map[string]any{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}},
		{"odd \"name\"\\\n\u2028\x01", `[]`,
			map[string]any{"jsonrpc": "2.0", "method": "odd \"name\"\\\n\u2028\x01", "params": []any{}}},
	}
	for _, tt := range tests {
		var params []byte
		if tt.params != "" {
			params = []byte(tt.params)
		}
		out := schema.AppendNotification([]byte("x"), tt.method, params)[1:]
		assertJSON(t, out, tt.want)
		m, err := schema.DecodeMessage(out)
		if err != nil || m.Kind() != schema.KindNotification || m.Method != tt.method {
			t.Errorf("DecodeMessage(%s) = %+v, %v", out, m, err)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	e := schema.Errorf(schema.CodeMethodNotFound, "method %q not found", "x")
	if e.Code != -32601 || e.Message != `method "x" not found` || e.Data != nil {
		t.Errorf("Errorf = %+v", e)
	}
	if got := e.Error(); got != `jsonrpc error -32601: method "x" not found` {
		t.Errorf("Error() = %q", got)
	}
	var target *schema.Error
	if !errors.As(error(e), &target) || target != e {
		t.Error("errors.As failed")
	}
	o := schema.OverloadedError("busy", 100)
	var data struct {
		Reason       string `json:"reason"`
		RetryAfterMs int    `json:"retryAfterMs"`
	}
	if err := json.Unmarshal(o.Data, &data); err != nil || data.Reason != "busy" || data.RetryAfterMs != 100 {
		t.Errorf("OverloadedError data = %s (%v)", o.Data, err)
	}
	if o.Code != schema.CodeOverloaded {
		t.Errorf("code = %d", o.Code)
	}
}

func TestNegotiate(t *testing.T) {
	for _, rev := range schema.SessionRevisions {
		if !schema.IsSessionRevision(rev) || schema.Negotiate(rev) != rev {
			t.Errorf("served revision %s not negotiated", rev)
		}
	}
	for _, rev := range []string{"", schema.Revision20241105, schema.Revision20260728, "garbage"} {
		if schema.IsSessionRevision(rev) || schema.Negotiate(rev) != schema.LatestRevision {
			t.Errorf("Negotiate(%q) = %q", rev, schema.Negotiate(rev))
		}
	}
	if schema.SessionRevisions[0] != schema.LatestRevision {
		t.Errorf("SessionRevisions not newest first: %v", schema.SessionRevisions)
	}
}

// assertJSON checks that data is valid JSON decoding to want (numbers as
// float64).
func assertJSON(t *testing.T, data []byte, want any) {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("invalid JSON: %s", data)
	}
	var got any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON %s\n got %#v\nwant %#v", data, got, want)
	}
}

// TestDecodeMessageRepeatedMember: a member of the message given twice is
// an invalid request, whichever the member; repeated members inside params
// are the tool's business.
func TestDecodeMessageRepeatedMember(t *testing.T) {
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,
		`{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","params":{},"params":{}}`,
		`{"jsonrpc":"2.0","id":1,"result":{},"result":{}}`,
	} {
		if _, e := schema.DecodeMessage([]byte(body)); e == nil || e.Code != schema.CodeInvalidRequest {
			t.Errorf("%s: %v, want -32600", body, e)
		}
	}
	if _, e := schema.DecodeMessage([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":1,"a":2},"x":1,"x":2}`)); e != nil {
		t.Errorf("repeated members inside params or unknown ones: %v", e)
	}
}

// A request's method reads the same whether or not it is one of the
// methods that come back as constants, escaped or not; and a tools/call
// costs no allocation for its method.
func TestDecodeMessageMethodNames(t *testing.T) {
	for raw, want := range map[string]string{`"tools/call"`: "tools/call", `"tools\/call"`: "tools/call", `"ping"`: "ping",
		`"tools/call2"`: "tools/call2", `"notifications/initialized"`: "notifications/initialized", `"\u0074ools/list"`: "tools/list"} {
		m, err := schema.DecodeMessage([]byte(`{"jsonrpc":"2.0","id":1,"method":` + raw + `}`))
		if err != nil || m.Method != want {
			t.Errorf("method %s: got %+v, %v; want %q", raw, m, err, want)
		}
	}
	call := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`)
	other := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/callx","params":{}}`)
	if a, b := testing.AllocsPerRun(100, func() { _, _ = schema.DecodeMessage(call) }), testing.AllocsPerRun(100, func() { _, _ = schema.DecodeMessage(other) }); a != b-1 {
		t.Errorf("decoding a tools/call: %v allocations, want one fewer than another method's %v", a, b)
	}
}
