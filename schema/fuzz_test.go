package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mcpstream/mcpstream/schema"
)

var jsonSeeds = []string{
	`null`, `true`, `false`, `0`, `-0`, `-1`, `1.5`, `1.0`, `-0.0`, `1e-7`, `1e21`, `1E+2`, `5e-324`, `1e999`, `1e-400`,
	`9223372036854775807`, `-9223372036854775808`, `18446744073709551615`, `18446744073709551616`, `-9223372036854775809`,
	`""`, `"plain"`, `"a\"b\\c\/\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800\udc00"`, `"\ud800\u0041"`,
	"\"\xff\xfe\"", "\"\\n\xe2\x82\"", "\"\u2028\u2029\"", `"\u0000\u001f\u007f"`,
	`{}`, `[]`, `{"a":1,"b":[true,null,{"c":"d"}]}`, `{"z":1,"a":2}`, `{"a":1,"a":2}`, `[[[[]]]]`, ` { "a" : [ 1 , 2 ] } `,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"q":"y"}}}`,
	`[1,]`, `{"a"}`, `01`, `1.`, `"abc`, `"\x"`, `"\u12"`, `{} {}`, "\x00", `tru`, `[1 2]`,
	nested("[", "]", schema.MaxDepth, ""), nested("[", "]", schema.MaxDepth+1, ""), nested(`{"a":`, "}", schema.MaxDepth, "1"),
	bigArray(16), bigObject(16), quoted(strings.Repeat("x", 40)), quoted(strings.Repeat("y", 300)),
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":1.0,"method":"m","params":[1]}`,
		`{"jsonrpc":"2.0","id":-12345678901234567890,"method":"m"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":null,"method":"n"}`,
		`{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`,
		`{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"m","data":[1]}}`,
		`{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}`,
		`{"jsonrpc":"1.0","id":1,"method":"m"}`, `{"jsonrpc":"2.0","id":true,"method":"m"}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}`, `{"jsonrpc":"2.0","result":1}`,
		`[{"jsonrpc":"2.0","method":"m"}]`, `[]`, `42`, `null`, ``, ` `, `{`, `{"jsonrpc":"2.0"`, `{}x`,
		"\v{\"jsonrpc\":\"2.0\",\"method\":\"m\"}", `{"JSONRPC":"2.0","Method":"m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := schema.DecodeMessage(data)
		trimmed := bytes.Trim(data, " \t\r\n") // JSON's whitespace only
		if err != nil {
			if m != nil {
				t.Fatal("message and error")
			}
			var e *schema.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *schema.Error", err)
			}
			switch e.Code {
			case schema.CodeParseError:
				if json.Valid(trimmed) {
					t.Fatalf("parse error for valid JSON %q: %v", data, err)
				}
			case schema.CodeInvalidRequest:
				if !json.Valid(trimmed) {
					t.Fatalf("invalid request for invalid JSON %q: %v", data, err)
				}
			default:
				t.Fatalf("unexpected code %d", e.Code)
			}
			if out := schema.AppendError(nil, nil, e); !json.Valid(out) {
				t.Fatalf("AppendError wrote invalid JSON %q", out)
			}
			return
		}
		// bytes.TrimSpace also strips non-JSON whitespace (see
		// TestDecodeMessageNonJSONWhitespace), so check the trimmed body.
		if !json.Valid(trimmed) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if m.JSONRPC != schema.Version {
			t.Fatalf("JSONRPC = %q", m.JSONRPC)
		}
		switch m.Kind() {
		case schema.KindRequest, schema.KindNotification:
			if m.Method == "" || m.Result != nil || m.Error != nil {
				t.Fatalf("bad request %+v", m)
			}
			if m.Params != nil && m.Params[0] != '{' && m.Params[0] != '[' {
				t.Fatalf("params %q", m.Params)
			}
		case schema.KindResponse:
			if (m.Result == nil) == (m.Error == nil) {
				t.Fatalf("response needs exactly one of result and error: %+v", m)
			}
		default:
			t.Fatalf("accepted message of kind %d: %q", m.Kind(), data)
		}
		if (m.Kind() == schema.KindNotification) != (m.ID == nil) {
			t.Fatalf("kind %d with id %q", m.Kind(), m.ID)
		}
		if m.ID == nil {
			out := schema.AppendNotification(nil, m.Method, m.Params)
			if again, err := schema.DecodeMessage(out); err != nil || again.Method != m.Method || !bytes.Equal(again.Params, m.Params) {
				t.Fatalf("notification %q does not round trip: %v", out, err)
			}
			return
		}
		if !m.ID.Valid() || !bytes.Contains(data, m.ID) {
			t.Fatalf("id %q", m.ID)
		}
		out := schema.AppendResult(nil, m.ID, []byte(`{}`))
		var back struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(out, &back); err != nil || !bytes.Equal(back.ID, m.ID) {
			t.Fatalf("AppendResult %q: id %q, %v", out, back.ID, err)
		}
		again, err := schema.DecodeMessage(out)
		if err != nil || again.Kind() != schema.KindResponse || !bytes.Equal(again.ID, m.ID) {
			t.Fatalf("reply %q does not decode: %v", out, err)
		}
	})
}

// sameEnvelope compares envelopes treating nil and empty byte slices alike.
func sameEnvelope(a, b *schema.Envelope) bool {
	x, y := *a, *b
	if !bytes.Equal(x.Params, y.Params) {
		return false
	}
	x.Params, y.Params = nil, nil
	return reflect.DeepEqual(x, y)
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	full := schema.Envelope{Key: "k", Method: "tools/call", Name: "n", Params: []byte{0x81, 0xa1, 'a', 0x01},
		Session: "s", Principal: "p", Revision: schema.LatestRevision, Deadline: 1 << 60, Attempt: 2, ReplyTo: "r"}
	b, _ := full.Marshal()
	f.Add(b)
	b, _ = (&schema.Envelope{Key: "k", Method: "m", ReplyTo: "r"}).Marshal()
	f.Add(b)
	f.Add(b[:len(b)-1])
	b, _ = msgpack.Marshal(&schema.Envelope{V: 2, Key: "k", Method: "m", ReplyTo: "r"})
	f.Add(b)
	b, _ = msgpack.Marshal(map[string]any{"v": 257, "k": "k", "m": "m", "t": "r", "p": []byte{1}, "x": []any{1, "y"}})
	f.Add(b)
	for _, s := range []string{"", "\xc0", "\x80", "\xc1", "\x93\x01\xa1k\xa1m", "\xdf\xff\xff\xff\xff", "\x81\xa1k\xdb\xff\xff\xff\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := schema.UnmarshalEnvelope(data)
		if err != nil {
			if e != nil {
				t.Fatal("envelope and error")
			}
			return
		}
		if e.V == 0 || e.V > schema.EnvelopeVersion || e.Key == "" || e.Method == "" || e.ReplyTo == "" {
			t.Fatalf("accepted %+v", e)
		}
		_ = e.Expired(e.DeadlineTime())
		if e.Deadline != 0 && !e.Expired(e.DeadlineTime()) {
			t.Fatalf("not expired at its own deadline: %d", e.Deadline)
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := schema.UnmarshalEnvelope(out)
		if err != nil {
			t.Fatalf("re-encoded envelope rejected: %v", err)
		}
		if !sameEnvelope(e, again) {
			t.Fatalf("round trip\n%+v\n%+v", e, again)
		}
	})
}

func FuzzUnmarshalReply(f *testing.F) {
	b, _ := (&schema.Reply{Key: "k", Kind: schema.ReplyNotification, Result: []byte{0x91, 0x01},
		Error: &schema.Error{Code: -1, Message: "m", Data: json.RawMessage(`{"a":1}`)}, Cached: true}).Marshal()
	f.Add(b)
	f.Add(b[:len(b)/2])
	b, _ = (&schema.Reply{Key: "k", Result: []byte{0xc0}}).Marshal()
	f.Add(b)
	b, _ = msgpack.Marshal(&schema.Reply{V: 9, Key: "k"})
	f.Add(b)
	for _, s := range []string{"", "\xc0", "\x80", "\xc1", "\x82\xa1v\x01\xa1k\xc6\xff\xff\xff\xff", "\x83\xa1v\x01\xa1k\xa1k\xa1e\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := schema.UnmarshalReply(data)
		if err != nil {
			if r != nil {
				t.Fatal("reply and error")
			}
			return
		}
		if r.V == 0 || r.V > schema.EnvelopeVersion || r.Key == "" {
			t.Fatalf("accepted %+v", r)
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := schema.UnmarshalReply(out)
		if err != nil {
			t.Fatalf("re-encoded reply rejected: %v", err)
		}
		if again.V != r.V || again.Key != r.Key || again.Kind != r.Kind || again.Cached != r.Cached ||
			!bytes.Equal(again.Result, r.Result) || (again.Error == nil) != (r.Error == nil) {
			t.Fatalf("round trip\n%+v\n%+v", r, again)
		}
		if r.Error != nil && (again.Error.Code != r.Error.Code || again.Error.Message != r.Error.Message ||
			!bytes.Equal(again.Error.Data, r.Error.Data)) {
			t.Fatalf("error round trip\n%+v\n%+v", r.Error, again.Error)
		}
	})
}

// hasFloat reports whether a vmihailenco-decoded value holds a float.
func hasFloat(v any) bool {
	switch v := v.(type) {
	case float32, float64:
		return true
	case []any:
		for _, e := range v {
			if hasFloat(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if hasFloat(e) {
				return true
			}
		}
	}
	return false
}

func FuzzJSONToMsgpack(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		mp, err := schema.JSONToMsgpack(nil, in)
		var want any
		stdErr := json.Unmarshal(in, &want)
		depthErr := schema.CheckDepth(in, schema.MaxDepth)
		if err != nil {
			// Valid JSON with numbers in range fails only for depth.
			if stdErr == nil && (depthErr == nil || !errors.Is(err, schema.ErrTooDeep)) {
				t.Fatalf("rejected %q, which encoding/json accepts: %v (CheckDepth: %v)", in, err, depthErr)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if stdErr != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", in, stdErr)
		}
		if depthErr != nil {
			t.Fatalf("accepted %q deeper than MaxDepth", in)
		}
		out, err := schema.MsgpackToJSON(nil, mp)
		if err != nil {
			t.Fatalf("MsgpackToJSON(JSONToMsgpack(%q)): %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("expanded %q to invalid JSON %q", in, out)
		}
		if got := jsonAny(t, out); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q expanded to %q: %#v, want %#v", in, out, got, want)
		}
		var raw any
		if err := msgpack.Unmarshal(mp, &raw); err != nil {
			t.Fatalf("vmihailenco/msgpack cannot decode % x: %v", mp, err)
		}
		std, ok := normalize(raw)
		if !ok || !reflect.DeepEqual(std, want) {
			t.Fatalf("vmihailenco/msgpack decodes %q to %#v, want %#v", in, std, want)
		}
		mp2, err := schema.JSONToMsgpack(nil, out)
		if err != nil {
			t.Fatalf("expanded JSON %q does not compact: %v", out, err)
		}
		if !hasFloat(raw) {
			if !bytes.Equal(mp, mp2) {
				t.Fatalf("%q: second compaction differs:\n% x\n% x", in, mp, mp2)
			}
			return
		}
		// MsgpackToJSON writes integral floats as integers ("1.0" -> "1"),
		// as encoding/json does, so the bytes settle after one more pass.
		out2, err := schema.MsgpackToJSON(nil, mp2)
		if err != nil {
			t.Fatal(err)
		}
		mp3, err := schema.JSONToMsgpack(nil, out2)
		if err != nil || !bytes.Equal(mp2, mp3) {
			t.Fatalf("%q: compaction not stable:\n% x\n% x (%v)", in, mp2, mp3, err)
		}
	})
}

func FuzzMsgpackToJSON(f *testing.F) {
	rich, _ := richMsgpack()
	f.Add(rich)
	for _, s := range jsonSeeds {
		if mp, err := schema.JSONToMsgpack(nil, []byte(s)); err == nil {
			f.Add(mp)
		}
	}
	for _, v := range []any{float32(0.1), int8(-5), uint64(math.MaxUint64), map[string]any{"a": []any{1.5, nil}}, []byte("bin")} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	for _, s := range []string{"", "\xc1", "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01", "\xdb\xff\xff\xff\xff", "\x81\x01\x02", "\x01\x02", "\xa3a\xffb", "\xd4\x01\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := schema.MsgpackToJSON(nil, in)
		value, valueErr := schema.MsgpackValue(in)
		if (err == nil) != (valueErr == nil) {
			t.Fatalf("% x: MsgpackToJSON fails with %v, MsgpackValue with %v", in, err, valueErr)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("% x expanded to invalid JSON %q", in, out)
		}
		got := jsonAny(t, out)
		// The value decoded directly is the one its JSON gives.
		if !reflect.DeepEqual(value, got) {
			t.Fatalf("% x: MsgpackValue gives %#v, encoding/json of %q %#v", in, value, out, got)
		}
		if err := schema.CheckDepth(out, schema.MaxDepth); err != nil {
			t.Fatalf("expanded %q deeper than MaxDepth", out)
		}
		mp, err := schema.JSONToMsgpack(nil, out)
		if err != nil {
			t.Fatalf("expanded JSON %q does not compact: %v", out, err)
		}
		out2, err := schema.MsgpackToJSON(nil, mp)
		if err != nil {
			t.Fatalf("recompacted % x does not expand: %v", mp, err)
		}
		if again := jsonAny(t, out2); !reflect.DeepEqual(again, got) {
			t.Fatalf("%q -> %q changes value", out, out2)
		}
		// Another msgpack decoder reads the same value.
		dec := msgpack.NewDecoder(bytes.NewReader(in))
		var raw any
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("vmihailenco/msgpack rejects % x: %v", in, err)
		}
		if _, err := dec.DecodeInterface(); err != io.EOF {
			t.Fatalf("vmihailenco/msgpack sees trailing data in % x", in)
		}
		if std, ok := normalize(raw); ok && !reflect.DeepEqual(std, got) {
			t.Fatalf("% x: vmihailenco/msgpack gives %#v, MsgpackToJSON %q", in, std, out)
		}
	})
}

// maxDepth returns the nesting depth of valid JSON.
func maxDepth(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("Token on valid JSON %q: %v", data, err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func FuzzCheckDepth(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), uint8(2))
		f.Add([]byte(s), uint8(schema.MaxDepth))
	}
	for _, s := range []string{`["\\",[1]]`, `"a\"[[["`, `{"[":"]"}`, `}}}[[[`, `"\`, `[[["]"]]]`} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		n := int(limit)
		err := schema.CheckDepth(data, n)
		if err != nil && !errors.Is(err, schema.ErrTooDeep) {
			t.Fatalf("unexpected error %v", err)
		}
		// Monotonic in the limit.
		if err == nil && schema.CheckDepth(data, n+1) != nil {
			t.Fatalf("ok at %d but too deep at %d", n, n+1)
		}
		if err != nil && n > 0 && schema.CheckDepth(data, n-1) == nil {
			t.Fatalf("too deep at %d but ok at %d", n, n-1)
		}
		if !json.Valid(data) {
			return
		}
		if d := maxDepth(t, data); (err == nil) != (d <= n) {
			t.Fatalf("CheckDepth(%q, %d) = %v, real depth %d", data, n, err, d)
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return // number out of range: JSONToMsgpack fails for that reason
		}
		_, convErr := schema.JSONToMsgpack(nil, data)
		if errors.Is(convErr, schema.ErrTooDeep) != (schema.CheckDepth(data, schema.MaxDepth) != nil) {
			t.Fatalf("%q: JSONToMsgpack %v disagrees with CheckDepth", data, convErr)
		}
	})
}
