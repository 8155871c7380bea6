package schema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mcpstream/mcpstream/schema"
)

func fullEnvelope(t *testing.T) schema.Envelope {
	t.Helper()
	params, err := schema.JSONToMsgpack(nil, []byte(`{"query":"caf\u00e9","limit":10,"filters":[true,null,1.5]}`))
	if err != nil {
		t.Fatal(err)
	}
	return schema.Envelope{
		Key:       "gw1.req-42",
		Method:    schema.MethodToolsCall,
		Name:      "search",
		Params:    params,
		Session:   "sess-1",
		Principal: "user@example.com",
		Revision:  schema.Revision20251125,
		Deadline:  time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(),
		Attempt:   3,
		ReplyTo:   "_INBOX.gw1.abc",

		ClientCaps:     []byte{0x81, 0xa8, 's', 'a', 'm', 'p', 'l', 'i', 'n', 'g', 0x80},
		InputResponses: []byte{0x81, 0xa1, 'k', 0x80},
		RequestState:   "state.sig",
		TaskID:         "task-1",
		TraceParent:    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		TraceState:     "congo=t61rcWkgMzE",
		Baggage:        "tenant=acme",
	}
}

// wireKeys returns the sorted top-level map keys of a msgpack map.
func wireKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatalf("wire form is not a msgpack map: %v", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := fullEnvelope(t)
	in.V = 99 // Marshal must overwrite it
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if in.V != schema.EnvelopeVersion {
		t.Errorf("Marshal stamped V = %d, want %d", in.V, schema.EnvelopeVersion)
	}
	got, err := schema.UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, in) {
		t.Errorf("round trip\n got %+v\nwant %+v", *got, in)
	}
	want := []string{"a", "b", "c", "d", "j", "k", "m", "n", "p", "r", "s", "t", "u", "v", "w", "x", "y", "z"}
	if keys := wireKeys(t, b); !slices.Equal(keys, want) {
		t.Errorf("wire keys = %v, want %v", keys, want)
	}
	// The params survive as compacted JSON.
	js, err := schema.MsgpackToJSON(nil, got.Params)
	if err != nil || string(js) != `{"query":"café","limit":10,"filters":[true,null,1.5]}` {
		t.Errorf("params = %s, %v", js, err)
	}
}

func TestEnvelopeMinimal(t *testing.T) {
	in := schema.Envelope{Key: "k", Method: schema.MethodPing, ReplyTo: "r"}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d", "k", "m", "t", "v"}
	if keys := wireKeys(t, b); !slices.Equal(keys, want) {
		t.Errorf("wire keys = %v, want %v (omitempty fields must be left out)", keys, want)
	}
	got, err := schema.UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, in) {
		t.Errorf("got %+v, want %+v", *got, in)
	}
}

// rawEnvelope encodes e without the stamping of Envelope.Marshal.
func rawEnvelope(t *testing.T, e schema.Envelope) []byte {
	t.Helper()
	b, err := msgpack.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalEnvelopeErrors(t *testing.T) {
	good := schema.Envelope{V: schema.EnvelopeVersion, Key: "k", Method: "m", ReplyTo: "r"}
	with := func(f func(*schema.Envelope)) []byte {
		e := good
		f(&e)
		return rawEnvelope(t, e)
	}
	mapOf := func(m map[string]any) []byte {
		b, err := msgpack.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		version bool // want ErrEnvelopeVersion
	}{
		{"version 0", with(func(e *schema.Envelope) { e.V = 0 }), true},
		{"newer version", with(func(e *schema.Envelope) { e.V = schema.EnvelopeVersion + 1 }), true},
		{"max version", with(func(e *schema.Envelope) { e.V = 255 }), true},
		{"no version key", mapOf(map[string]any{"k": "k", "m": "m", "t": "r"}), true},
		{"empty map", []byte{0x80}, true},
		{"missing key", with(func(e *schema.Envelope) { e.Key = "" }), false},
		{"missing method", with(func(e *schema.Envelope) { e.Method = "" }), false},
		{"missing reply subject", with(func(e *schema.Envelope) { e.ReplyTo = "" }), false},
		{"empty input", nil, false},
		{"reserved code", []byte{0xc1}, false},
		{"text", []byte("hello, world"), false},
		{"json", []byte(`{"v":1,"k":"k","m":"m","t":"r"}`), false},
		{"integer", []byte{0x01}, false},
		{"string", []byte{0xa1, 'x'}, false},
		{"version is a string", mapOf(map[string]any{"v": "1", "k": "k", "m": "m", "t": "r"}), false},
		{"key is a number", mapOf(map[string]any{"v": 1, "k": 5, "m": "m", "t": "r"}), false},
		{"deadline is a string", mapOf(map[string]any{"v": 1, "k": "k", "m": "m", "t": "r", "d": "soon"}), false},
		{"huge string length", []byte{0x81, 0xa1, 'k', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, false},
		{"huge map length", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := schema.UnmarshalEnvelope(tt.in)
			if err == nil {
				t.Fatalf("accepted %x as %+v", tt.in, e)
			}
			if e != nil {
				t.Error("non-nil envelope with error")
			}
			if got := errors.Is(err, schema.ErrEnvelopeVersion); got != tt.version {
				t.Errorf("errors.Is(%v, ErrEnvelopeVersion) = %v, want %v", err, got, tt.version)
			}
		})
	}
}

func TestUnmarshalEnvelopeTruncated(t *testing.T) {
	e := fullEnvelope(t)
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if got, err := schema.UnmarshalEnvelope(b[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes accepted: %+v", n, len(b), got)
		}
	}
}

// The version must not wrap around: 257 is newer than 1, not version 1.
func TestUnmarshalEnvelopeVersionOverflow(t *testing.T) {
	for _, v := range []any{257, 513, -255, uint64(1<<32 + 1)} {
		b, err := msgpack.Marshal(map[string]any{"v": v, "k": "k", "m": "m", "t": "r"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := schema.UnmarshalEnvelope(b)
		if err == nil {
			t.Fatalf("regression: envelope.go UnmarshalEnvelope: msgpack truncates version %v into uint8 V=%d and accepts it", v, e.V)
		}
	}
}

func TestUnmarshalEnvelopeTrailingData(t *testing.T) {
	b, err := (&schema.Envelope{Key: "k", Method: "m", ReplyTo: "r"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.UnmarshalEnvelope(append(b, 0xc1, 0xff)); err == nil {
		t.Fatalf("regression: envelope.go UnmarshalEnvelope: bytes after the envelope are silently ignored (msgpack.Unmarshal does not check for trailing data)")
	}
}

// Malformed input that declares a huge string must cost the same every time.
// vmihailenco/msgpack v5.4.1 keeps the buffer it grew for a failed read in its
// pooled Decoder (readNGrow), so each repeat of the same 8-byte message grows
// that buffer by about 25% until it reaches the declared length (up to 4 GiB,
// retained for as long as decoding continues).
func TestUnmarshalEnvelopeHugeLengthMemoryBounded(t *testing.T) {
	in := []byte{0x81, 0xa1, 'k', 0xdb, 0x7f, 0xff, 0xff, 0xff} // {"k": str32 of 2 GiB}, truncated
	var ms runtime.MemStats
	var worst uint64
	for i := range 16 {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		if _, err := schema.UnmarshalEnvelope(in); err == nil {
			t.Fatal("accepted truncated input")
		}
		runtime.ReadMemStats(&ms)
		if d := ms.TotalAlloc - before; i >= 8 && d > worst {
			worst = d
		}
	}
	if worst > 8<<20 {
		t.Fatalf("regression: envelope.go UnmarshalEnvelope/UnmarshalReply via msgpack.Unmarshal: repeating the 8-byte input % x allocates more each time (%d MiB on one of calls 9-16); the pooled decoder buffer grows toward the declared 2 GiB", in, worst>>20)
	}
}

func TestEnvelopeDeadline(t *testing.T) {
	var zero schema.Envelope
	if !zero.DeadlineTime().IsZero() {
		t.Errorf("zero Deadline gives time %v", zero.DeadlineTime())
	}
	for _, now := range []time.Time{{}, time.Unix(0, 0), time.Now(), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if zero.Expired(now) {
			t.Errorf("an envelope without deadline expired at %v", now)
		}
	}
	d := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)
	e := schema.Envelope{Deadline: d.UnixNano()}
	if got := e.DeadlineTime(); !got.Equal(d) {
		t.Errorf("DeadlineTime = %v, want %v", got, d)
	}
	tests := []struct {
		now  time.Time
		want bool
	}{
		{d.Add(-time.Hour), false},
		{d.Add(-time.Nanosecond), false},
		{d, true},
		{d.Add(time.Nanosecond), true},
		{d.Add(time.Hour), true},
	}
	for _, tt := range tests {
		if got := e.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
	// A deadline before 1970 is negative but still a deadline.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	e = schema.Envelope{Deadline: old.UnixNano()}
	if !e.Expired(time.Now()) || !e.DeadlineTime().Equal(old) {
		t.Errorf("pre-1970 deadline: expired=%v time=%v", e.Expired(time.Now()), e.DeadlineTime())
	}
	// The deadline survives the wire.
	full := fullEnvelope(t)
	b, err := full.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := schema.UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.DeadlineTime().Equal(full.DeadlineTime()) || got.Expired(full.DeadlineTime().Add(-1)) || !got.Expired(full.DeadlineTime()) {
		t.Errorf("deadline changed on the wire: %v vs %v", got.DeadlineTime(), full.DeadlineTime())
	}
}

func TestReplyRoundTrip(t *testing.T) {
	result, err := schema.JSONToMsgpack(nil, []byte(`{"content":[{"type":"text","text":"ok"}],"isError":false}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   schema.Reply
		keys []string
	}{
		{"every field", schema.Reply{
			Key:    "k1",
			Kind:   schema.ReplyNotification,
			Result: result,
			Error:  &schema.Error{Code: schema.CodeOverloaded, Message: "busy", Data: json.RawMessage(`{"retryAfterMs":5}`)},
			Cached: true,
		}, []string{"c", "e", "i", "k", "r", "v"}},
		{"result", schema.Reply{Key: "k2", Result: result}, []string{"k", "r", "v"}},
		{"error", schema.Reply{Key: "k3", Error: schema.Errorf(schema.CodeRequestTimeout, "timed out")}, []string{"e", "k", "v"}},
		{"cached", schema.Reply{Key: "k4", Result: []byte{0x90}, Cached: true}, []string{"c", "k", "r", "v"}},
		{"request to the client", schema.Reply{Key: "k5", Kind: schema.ReplyRequest, Method: schema.MethodRootsList, Result: []byte{0x80}, ID: "mcps-00"},
			[]string{"i", "k", "m", "q", "r", "v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.V = 42
			b, err := in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if in.V != schema.EnvelopeVersion {
				t.Errorf("Marshal stamped V = %d", in.V)
			}
			got, err := schema.UnmarshalReply(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, in) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, in)
			}
			if keys := wireKeys(t, b); !slices.Equal(keys, tt.keys) {
				t.Errorf("wire keys = %v, want %v", keys, tt.keys)
			}
		})
	}
}

// A JSON-RPC result may be null; JSONToMsgpack compacts it to the single byte
// 0xc0, which must survive the Reply round trip.
func TestReplyNullResult(t *testing.T) {
	null, err := schema.JSONToMsgpack(nil, []byte(`null`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&schema.Reply{Key: "k", Result: null}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := schema.UnmarshalReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Result) == 0 {
		_, expandErr := schema.MsgpackToJSON(nil, got.Result)
		t.Fatalf("regression: envelope.go Reply: Result %x (JSON null) decodes as %#v, so the reply has neither result nor error and MsgpackToJSON fails: %v", null, got.Result, expandErr)
	}
	if js, err := schema.MsgpackToJSON(nil, got.Result); err != nil || string(js) != "null" {
		t.Errorf("result = %s, %v", js, err)
	}
}

// JSON null arguments compact to msgpack nil, which decodes as absent
// params: a tool then sees "no arguments", the same as null.
func TestEnvelopeNullParams(t *testing.T) {
	b, err := (&schema.Envelope{Key: "k", Method: "m", ReplyTo: "r", Params: []byte{0xc0}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := schema.UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Params) != 0 {
		t.Fatalf("null params decoded as %x, want absent", got.Params)
	}
}

func TestReplyErrorWireNames(t *testing.T) {
	r := schema.Reply{Key: "k", Error: &schema.Error{Code: -1, Message: "m", Data: json.RawMessage(`1`)}}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		E map[string]any `msgpack:"e"`
	}
	if err := msgpack.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(wire.E))
	for k := range wire.E {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"c", "d", "m"}) {
		t.Errorf("error wire keys = %v", keys)
	}
}

func TestUnmarshalReplyErrors(t *testing.T) {
	raw := func(r schema.Reply) []byte {
		b, err := msgpack.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		version bool
	}{
		{"version 0", raw(schema.Reply{Key: "k"}), true},
		{"newer version", raw(schema.Reply{V: schema.EnvelopeVersion + 1, Key: "k"}), true},
		{"empty map", []byte{0x80}, true},
		{"missing key", raw(schema.Reply{V: schema.EnvelopeVersion, Result: []byte{0x01}}), false},
		{"empty input", nil, false},
		{"reserved code", []byte{0xc1}, false},
		{"text", []byte("garbage!"), false},
		{"array of junk", []byte{0x93, 0xc1, 0xc1, 0xc1}, false},
		{"error is a string", []byte{0x83, 0xa1, 'v', 0x01, 0xa1, 'k', 0xa1, 'k', 0xa1, 'e', 0xa1, 'x'}, false},
		{"huge bin length", []byte{0x82, 0xa1, 'v', 0x01, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := schema.UnmarshalReply(tt.in)
			if err == nil {
				t.Fatalf("accepted %x as %+v", tt.in, r)
			}
			if got := errors.Is(err, schema.ErrEnvelopeVersion); got != tt.version {
				t.Errorf("errors.Is(%v, ErrEnvelopeVersion) = %v, want %v", err, got, tt.version)
			}
		})
	}
	full := schema.Reply{Key: "key", Kind: schema.ReplyNotification, Result: []byte{0x92, 0x01, 0xa1, 'x'},
		Error: &schema.Error{Code: 1, Message: "m", Data: json.RawMessage(`[1]`)}, Cached: true}
	b, err := full.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if got, err := schema.UnmarshalReply(b[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes accepted: %+v", n, len(b), got)
		}
	}
}

// TestTraceCarrier: the envelope carries the W3C traceparent, tracestate
// and baggage, set and read in any case; other keys are dropped, and Keys
// lists only what is set.
func TestTraceCarrier(t *testing.T) {
	var env schema.Envelope
	c := env.Trace()
	if keys := c.Keys(); len(keys) != 0 {
		t.Fatalf("keys of an empty envelope: %v", keys)
	}
	c.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	c.Set("Baggage", "k=v")
	c.Set("x-other", "dropped")
	if env.TraceParent == "" || c.Get("TRACEPARENT") != env.TraceParent || env.Baggage != "k=v" || c.Get("baggage") != "k=v" || c.Get("x-other") != "" {
		t.Fatalf("after Set: %+v, Get(TRACEPARENT) %q", env, c.Get("TRACEPARENT"))
	}
	c.Set("tracestate", "congo=t61rcWkgMzE")
	if keys := c.Keys(); len(keys) != 3 || keys[0] != "traceparent" || keys[1] != "tracestate" || keys[2] != "baggage" {
		t.Errorf("keys %v", keys)
	}
}
