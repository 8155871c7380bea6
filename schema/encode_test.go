package schema_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mcpstream/mcpstream/schema"
)

// The hand-written encoders write what the msgpack library decodes to the
// same struct (same keys, same omitempty rules), and never more bytes than
// the library writes (integers are written in their compact form).
func TestEncodersMatchLibrary(t *testing.T) {
	params, _ := schema.JSONToMsgpack(nil, []byte(`{"text":"hi","n":[1,2.5,-300,70000]}`))
	envs := []*schema.Envelope{
		{Key: "k", Method: "tools/call", ReplyTo: "mcp.reply.g"},
		{Key: "gw-1-2", Method: "tools/call", Name: "echo", Params: params, Session: "s", Principal: "alice",
			Revision: "2025-11-25", Deadline: 1_800_000_000_000_000_000, Attempt: 3, ReplyTo: "mcp.reply.gw"},
		{Key: "k", Method: "m", ReplyTo: "r", Deadline: -5, Attempt: 70000 % 65536},
		{Key: "k", Method: "m", ReplyTo: "r", ProgressToken: []byte{0xa3, 't', 'o', 'k'}, RequestID: `"req-1"`},
		// every field set: 20 entries, more than a fixmap holds
		{Key: "gw-1-2", Method: "tools/call", Name: "echo", Params: params, Session: "s", Principal: "alice",
			Revision: "2025-11-25", Deadline: 1, Attempt: 2, ReplyTo: "r", ProgressToken: []byte{0x07}, RequestID: "1",
			ClientCaps: []byte{0x80}, InputResponses: []byte{0x80}, RequestState: "st", TaskID: "t",
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "k=v", Baggage: "user=ada"},
	}
	for _, e := range envs {
		got, _ := e.Marshal()
		want, err := msgpack.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back schema.Envelope
		if err := msgpack.Unmarshal(got, &back); err != nil {
			t.Fatalf("library cannot decode % x: %v", got, err)
		}
		if !reflect.DeepEqual(&back, e) {
			t.Errorf("envelope decoded as %+v, want %+v", &back, e)
		}
		if len(got) > len(want) {
			t.Errorf("envelope: %d bytes, the library writes %d", len(got), len(want))
		}
	}
	big := bytes.Repeat([]byte("x"), 300)
	reps := []*schema.Reply{
		{Key: "k", Result: []byte{0xc0}},
		{Key: "k", Kind: schema.ReplyNotification, Result: params, Cached: true},
		{Key: "k", Result: params, RunNs: 20_123_456},
		{Key: "k", Kind: schema.ReplyNotification, Method: "notifications/progress", Result: params},
		{Key: "k", Error: &schema.Error{Code: -32602, Message: "Unknown tool: x"}},
		{Key: "k", Error: &schema.Error{Code: 7, Message: "m", Data: json.RawMessage(`{"a":1}`)}},
		{Key: "k", Error: &schema.Error{Code: -32000, Message: string(big), Data: json.RawMessage(`"` + string(big) + `"`)}},
	}
	for _, r := range reps {
		got, _ := r.Marshal()
		want, err := msgpack.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := schema.UnmarshalReply(got) // the library, plus the null-result fix
		if err != nil {
			t.Fatalf("cannot decode % x: %v", got, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Errorf("reply decoded as %+v, want %+v", back, r)
		}
		if len(got) > len(want) {
			t.Errorf("reply: %d bytes, the library writes %d", len(got), len(want))
		}
	}
}
