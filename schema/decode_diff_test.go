package schema

// Differential tests of the hand-written decoders (decode.go) against the
// msgpack library they replace: libraryUnmarshalEnvelope and
// libraryUnmarshalReply are UnmarshalEnvelope and UnmarshalReply as they
// were before, checkMsgpack then msgpack.Unmarshal.
//
// Whenever the library path accepts an input, the decoder must accept it
// and return a deep-equal value (reflect.DeepEqual: nil and empty slices
// differ), except where it departs from the library on purpose, which
// libraryQuirk recognises in the input:
//   - an integer out of its Go field's range (Attempt beyond uint16, Kind
//     beyond uint8, a negative one for either, a uint64 beyond int64 for
//     Deadline, RunNs or Error.Code) is an error: the library wraps it
//     silently (Attempt 65537 becomes 1), which turns a corrupt message into
//     a plausible one;
//   - a struct (the envelope, the reply or its error) encoded as an array
//     of its fields in declaration order is an error: the library accepts
//     it, but nothing writes it, and the order of Go fields is no wire
//     format.
//
// Whenever the library path rejects an input, the decoder must reject it
// too; and when both reject, the decoder reports ErrEnvelopeVersion exactly
// when the library path does (the quirks above aside, where the library
// decodes a version error and the decoder stops earlier at the bad field).
// A version beyond int's range is clamped by the decoder and wrapped by
// the library: both report ErrEnvelopeVersion.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// libraryUnmarshalEnvelope is UnmarshalEnvelope before the hand-written
// decoder: the reference.
func libraryUnmarshalEnvelope(b []byte) (*Envelope, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("decoding envelope: %w", err)
	}
	var e Envelope
	if err := msgpack.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decoding envelope: %w", err)
	}
	if e.V < 1 || e.V > EnvelopeVersion {
		return nil, fmt.Errorf("decoding envelope: version %d: %w", e.V, ErrEnvelopeVersion)
	}
	if e.Key == "" || e.Method == "" || e.ReplyTo == "" {
		return nil, errors.New("decoding envelope: key, method and reply subject are required")
	}
	return &e, nil
}

// libraryUnmarshalReply is UnmarshalReply before the hand-written decoder:
// the reference.
func libraryUnmarshalReply(b []byte) (*Reply, error) {
	if err := checkMsgpack(b); err != nil {
		return nil, fmt.Errorf("decoding reply: %w", err)
	}
	var r Reply
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding reply: %w", err)
	}
	if r.Result == nil && r.Error == nil && r.Kind == ReplyResult {
		r.Result = msgpack.RawMessage{0xc0}
	}
	if r.V < 1 || r.V > EnvelopeVersion {
		return nil, fmt.Errorf("decoding reply: version %d: %w", r.V, ErrEnvelopeVersion)
	}
	if r.Key == "" {
		return nil, errors.New("decoding reply: key is required")
	}
	return &r, nil
}

// intRange is the range of an integer field.
type intRange struct {
	min int64
	max uint64
}

var int64Range = intRange{math.MinInt64, math.MaxInt64}

// structRules describe where a struct's decoding departs from the library:
// its integer fields narrower than the wire's integers, and its fields that
// are structs themselves.
type structRules struct {
	ints   map[string]intRange
	nested map[string]*structRules
}

var (
	envelopeRules = &structRules{ints: map[string]intRange{"a": {0, math.MaxUint16}, "d": int64Range}}
	errorRules    = &structRules{ints: map[string]intRange{"c": int64Range}}
	replyRules    = &structRules{
		ints:   map[string]intRange{"i": {0, math.MaxUint8}, "n": int64Range},
		nested: map[string]*structRules{"e": errorRules},
	}
)

// libraryQuirk returns why the decoder may reject data that the library
// accepts (a struct as an array, an integer out of range), or "". It walks
// data with the library's own decoder, so it does not share the code under
// test; it is meant for data the library decoded.
func libraryQuirk(data []byte, rules *structRules) string {
	return rules.quirk(msgpack.NewDecoder(bytes.NewReader(data)))
}

func (s *structRules) quirk(d *msgpack.Decoder) string {
	c, err := d.PeekCode()
	if err != nil {
		return ""
	}
	if msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 {
		return "struct encoded as an array"
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return ""
	}
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return ""
		}
		if r, ok := s.ints[k]; ok {
			if q := r.quirk(d, k); q != "" {
				return q
			}
			continue
		}
		if ns := s.nested[k]; ns != nil {
			if q := ns.quirk(d); q != "" {
				return q
			}
			continue
		}
		if d.Skip() != nil {
			return ""
		}
	}
	return ""
}

func (r intRange) quirk(d *msgpack.Decoder, k string) string {
	c, err := d.PeekCode()
	if err != nil {
		return ""
	}
	switch {
	case c == msgpcode.Uint64:
		if u, err := d.DecodeUint64(); err == nil && u > r.max {
			return fmt.Sprintf("field %q: %d out of range", k, u)
		}
	case msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		if i, err := d.DecodeInt64(); err == nil && (i < r.min || i > 0 && uint64(i) > r.max) {
			return fmt.Sprintf("field %q: %d out of range", k, i)
		}
	default:
		_ = d.Skip()
	}
	return ""
}

// checkSame fails t unless the decoder's outcome (got, err) agrees with
// the library's (want, wantErr) on data, as the file comment describes.
func checkSame[T any](t *testing.T, data []byte, rules *structRules, want *T, wantErr error, got *T, err error) {
	t.Helper()
	if (got == nil) == (err == nil) {
		t.Fatalf("decoder returned %+v and %v for %x", got, err, data)
	}
	switch {
	case wantErr == nil && err == nil:
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%x decodes as\n%#v\nthe library decodes\n%#v", data, got, want)
		}
	case wantErr == nil:
		if libraryQuirk(data, rules) == "" {
			t.Fatalf("the library accepts %x as %+v, the decoder rejects it: %v", data, want, err)
		}
	case err == nil:
		t.Fatalf("the library rejects %x (%v), the decoder accepts it as %+v", data, wantErr, got)
	default:
		wv, gv := errors.Is(wantErr, ErrEnvelopeVersion), errors.Is(err, ErrEnvelopeVersion)
		if gv && !wv || wv && !gv && libraryQuirk(data, rules) == "" {
			t.Fatalf("%x: the library fails with %v, the decoder with %v", data, wantErr, err)
		}
	}
}

// The raw fields refer to the input but cannot be appended into it.
func checkCapped(t *testing.T, raws ...[]byte) {
	t.Helper()
	for _, b := range raws {
		if cap(b) != len(b) {
			t.Fatalf("raw field % x has room to grow into the input (cap %d)", b, cap(b))
		}
	}
}

// Helpers writing msgpack by hand for the seeds.
func mpStr(s string) []byte { return appendMsgpackStr(nil, []byte(s)) }
func mpBin(s string) []byte { return appendBin(nil, []byte(s)) }
func mpInt(i int64) []byte  { return appendMsgpackInt(nil, i) }

// mpMap writes a map of alternating keys and values, each already encoded
// (a string key may be given as a Go string).
func mpMap(kvs ...any) []byte {
	out := []byte{0xde, byte(len(kvs) / 2 >> 8), byte(len(kvs) / 2)}
	for i, kv := range kvs {
		switch kv := kv.(type) {
		case string:
			if i%2 == 1 {
				panic("mpMap: value given as a Go string")
			}
			out = append(out, mpStr(kv)...)
		case []byte:
			out = append(out, kv...)
		}
	}
	return out
}

// wide writes integers in the encodings the hand-written encoders never
// use.
func wideUint(u uint64) []byte {
	return []byte{0xcf, byte(u >> 56), byte(u >> 48), byte(u >> 40), byte(u >> 32), byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}
func wideInt(i int64) []byte { return append([]byte{0xd3}, wideUint(uint64(i))[1:]...) }

func richEnvelope() *Envelope {
	return &Envelope{V: EnvelopeVersion, Key: "gw-1.req-42", Method: MethodToolsCall, Name: "search",
		Params:  []byte{0x82, 0xa1, 'q', 0xa4, 'c', 'a', 'f', 0xc3, 0xa1, 'n', 0x93, 0xc3, 0xc0, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
		Session: "sess-1", Principal: "user@example.com", Revision: LatestRevision, Deadline: -1 << 62, Attempt: 65535,
		ReplyTo: "_INBOX.gw1", ProgressToken: []byte{0xa3, 't', 'o', 'k'}, RequestID: `"7"`,
		ClientCaps: []byte{0x81, 0xa8, 's', 'a', 'm', 'p', 'l', 'i', 'n', 'g', 0x80}, InputResponses: []byte{0x81, 0xa1, 'k', 0x90},
		RequestState: "state.sig", TaskID: "task-1", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "congo=t61rcWkgMzE", Baggage: "tenant=acme,user=ada"}
}

func richReply() *Reply {
	return &Reply{V: EnvelopeVersion, Key: "gw-1.req-42", Kind: ReplyRequest, Result: []byte{0x91, 0xa2, 'o', 'k'},
		Error:  &Error{Code: math.MinInt32, Message: "busy", Data: json.RawMessage(`{"retryAfterMs":5}`)},
		Cached: true, RunNs: math.MaxInt64, Method: MethodRootsList, ID: "mcps-00"}
}

func envelopeSeeds() [][]byte {
	rich := appendEnvelope(nil, richEnvelope())
	lib, _ := msgpack.Marshal(richEnvelope())
	var arr bytes.Buffer
	enc := msgpack.NewEncoder(&arr)
	enc.UseArrayEncodedStructs(true)
	_ = enc.Encode(richEnvelope())
	minimal := appendEnvelope(nil, &Envelope{V: 1, Key: "k", Method: "m", ReplyTo: "r"})
	req := []any{"v", mpInt(1), "k", mpStr("k"), "m", mpStr("m"), "t", mpStr("r")}
	with := func(kvs ...any) []byte { return mpMap(append(append([]any{}, req...), kvs...)...) }
	deep := bytes.Repeat([]byte{0x91}, MaxDepth+1)
	seeds := [][]byte{
		rich, lib, arr.Bytes(), minimal, rich[:len(rich)/2], rich[:len(rich)-1], append(bytes.Clone(minimal), 0xc0),
		// the library's rules: bin and nil keys and strings, nil values,
		// repeated keys, unknown keys, wide integers
		mpMap(mpBin("v"), mpInt(1), mpBin("k"), mpBin("k"), "m", mpStr("m"), "t", mpBin("r"), []byte{0xc0}, mpInt(5)),
		with("n", []byte{0xc0}, "p", []byte{0xc0}, "g", []byte{0xc0}, "c", []byte{0xc0}, "x", []byte{0xc0}, "a", []byte{0xc0}, "d", []byte{0xc0}),
		with("k", mpStr("first"), "k", mpStr("second"), "p", mpInt(1), "p", []byte{0xc0}, "zz", mpMap("deep", deep[:MaxDepth-1])),
		with("v", wideUint(1), "d", wideUint(math.MaxInt64), "a", []byte{0xcd, 0xff, 0xff}, "unknown", []byte{0xd7, 0xff, 1, 2, 3, 4, 5, 6, 7, 8}),
		with("v", wideInt(1), "d", wideInt(math.MinInt64), "a", []byte{0xd0, 0x05}, "s", []byte{0xdb, 0, 0, 0, 1, 's'}),
		with("p", []byte{0xc7, 2, 1, 'x', 'y'}, "g", []byte{0xc4, 0}, "y", []byte{0xc4, 0}),
		// out of range for the library to wrap
		with("a", []byte{0xce, 0, 1, 0, 1}), with("a", mpInt(-1)), with("d", wideUint(math.MaxUint64)),
		with("v", wideUint(math.MaxUint64)), with("v", wideUint(1<<32+1)), with("v", mpInt(-255)),
		// malformed
		with("p", deep), with("p", deep[:MaxDepth]), with("k", mpInt(5)), with("d", mpStr("soon")), with("a", []byte{0xca, 0, 0, 0, 0}),
		mpMap(mpInt(1), mpInt(1)), {0x90}, {0x80}, {0xc0}, {0xc1}, {}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x81, 0xa1, 'k', 0xdb, 0xff, 0xff, 0xff, 0xff},
	}
	return seeds
}

func replySeeds() [][]byte {
	rich := appendReply(nil, richReply())
	lib, _ := msgpack.Marshal(richReply())
	var arr bytes.Buffer
	enc := msgpack.NewEncoder(&arr)
	enc.UseArrayEncodedStructs(true)
	_ = enc.Encode(richReply())
	req := []any{"v", mpInt(1), "k", mpStr("k")}
	with := func(kvs ...any) []byte { return mpMap(append(append([]any{}, req...), kvs...)...) }
	errMap := mpMap("c", mpInt(-32000), "m", mpStr("m"), "d", mpBin(`{"a":1}`))
	seeds := [][]byte{
		rich, lib, arr.Bytes(), rich[:len(rich)/2], rich[:len(rich)-1], append(bytes.Clone(rich), 0x00),
		appendReply(nil, &Reply{V: 1, Key: "k", Result: []byte{0xc0}}),
		appendReply(nil, &Reply{V: 1, Key: "k", Error: &Error{Code: 1, Message: "x"}}),
		// the library's rules: an error map repeated merges, nil resets
		with("e", errMap, "e", mpMap("c", mpInt(7))),
		with("e", errMap, "e", []byte{0xc0}, "e", mpMap("c", mpInt(7))),
		with("e", mpMap("d", mpStr("[1]"), "d", []byte{0xc4, 0}, "m", []byte{0xc0}, "x", mpMap("y", mpInt(1)))),
		with("e", mpMap("d", []byte{0xc0}), "r", []byte{0xc0}, "c", []byte{0xc0}, "i", []byte{0xc0}, "n", []byte{0xc0}),
		with("i", mpInt(1), "m", mpBin("notifications/progress"), "r", mpMap("p", mpInt(1)), "c", []byte{0xc2}),
		with("i", []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 2}, "n", wideInt(-5), "q", mpBin("id")),
		// out of range for the library to wrap
		with("i", mpInt(256)), with("i", mpInt(-1)), with("n", wideUint(1<<63)), with("e", mpMap("c", wideUint(math.MaxUint64))),
		with("e", []byte{0x90}), with("e", []byte{0x93, 0x01, 0xa1, 'm', 0xc0}),
		// malformed
		with("e", mpStr("x")), with("e", mpMap("c", mpStr("x"))), with("c", mpInt(1)), with("r", bytes.Repeat([]byte{0x91}, MaxDepth+2)),
		with("e", mpMap("x", bytes.Repeat([]byte{0x91}, MaxDepth+1))), with("e", mpMap("x", bytes.Repeat([]byte{0x91}, MaxDepth))),
		{0x82, 0xa1, 'v', 0x01, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff}, {0x90}, {0x80}, {0xc0}, {0xc1}, {},
	}
	return seeds
}

func FuzzDecodeEnvelopeDiff(f *testing.F) {
	for _, s := range envelopeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		want, wantErr := libraryUnmarshalEnvelope(data)
		got, err := UnmarshalEnvelope(data)
		if !bytes.Equal(in, data) {
			t.Fatal("the decoder changed its input")
		}
		checkSame(t, data, envelopeRules, want, wantErr, got, err)
		if got != nil {
			checkCapped(t, got.Params, got.ProgressToken, got.ClientCaps, got.InputResponses)
		}
	})
}

func FuzzDecodeReplyDiff(f *testing.F) {
	for _, s := range replySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		want, wantErr := libraryUnmarshalReply(data)
		got, err := UnmarshalReply(data)
		if !bytes.Equal(in, data) {
			t.Fatal("the decoder changed its input")
		}
		checkSame(t, data, replyRules, want, wantErr, got, err)
		if got != nil {
			checkCapped(t, got.Result)
			if got.Error != nil {
				checkCapped(t, got.Error.Data)
			}
		}
	})
}

// The seeds exercise what they are meant to: the library accepts the rich
// encodings, both the library's rules and the deliberate departures are
// reached, and the decoder reads every field of the rich values.
func TestDecodeDiffSeeds(t *testing.T) {
	env, err := UnmarshalEnvelope(appendEnvelope(nil, richEnvelope()))
	if err != nil || !reflect.DeepEqual(env, richEnvelope()) {
		t.Fatalf("rich envelope: %+v, %v", env, err)
	}
	rep, err := UnmarshalReply(appendReply(nil, richReply()))
	if err != nil || !reflect.DeepEqual(rep, richReply()) {
		t.Fatalf("rich reply: %+v, %v", rep, err)
	}
	for _, v := range []reflect.Value{reflect.ValueOf(*env), reflect.ValueOf(*rep), reflect.ValueOf(*rep.Error)} {
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && v.Field(i).IsZero() {
				t.Errorf("rich %s leaves %s unset", v.Type().Name(), v.Type().Field(i).Name)
			}
		}
	}
	quirks := 0
	for _, seeds := range []struct {
		data  [][]byte
		rules *structRules
		lib   func([]byte) error
	}{
		{envelopeSeeds(), envelopeRules, func(b []byte) error { _, err := libraryUnmarshalEnvelope(b); return err }},
		{replySeeds(), replyRules, func(b []byte) error { _, err := libraryUnmarshalReply(b); return err }},
	} {
		for _, s := range seeds.data {
			if seeds.lib(s) == nil && libraryQuirk(s, seeds.rules) != "" {
				quirks++
			}
		}
	}
	if quirks < 6 {
		t.Errorf("only %d seeds are accepted by the library and rejected on purpose", quirks)
	}
}

// The deliberate departures from the library, one by one: the library
// accepts each input (wrapping the integer or reading the array), the
// decoder rejects it and names the field.
func TestDecodeRejectsWhatTheLibraryWraps(t *testing.T) {
	env := []any{"v", mpInt(1), "k", mpStr("k"), "m", mpStr("m"), "t", mpStr("r")}
	rep := []any{"v", mpInt(1), "k", mpStr("k")}
	tests := []struct {
		name  string
		in    []byte
		reply bool
		field string
	}{
		{"attempt 65537", mpMap(append(env, "a", mpInt(65537))...), false, `field "a"`},
		{"attempt -1", mpMap(append(env, "a", mpInt(-1))...), false, `field "a"`},
		{"deadline 2^63", mpMap(append(env, "d", wideUint(1<<63))...), false, `field "d"`},
		{"envelope as an array", func() []byte {
			var b bytes.Buffer
			enc := msgpack.NewEncoder(&b)
			enc.UseArrayEncodedStructs(true)
			_ = enc.Encode(richEnvelope())
			return b.Bytes()
		}(), false, "not a map"},
		{"kind 256", mpMap(append(rep, "i", mpInt(256))...), true, `field "i"`},
		{"run time 2^64-1", mpMap(append(rep, "n", wideUint(math.MaxUint64))...), true, `field "n"`},
		{"error code 2^63", mpMap(append(rep, "e", mpMap("c", wideUint(1<<63)))...), true, `field "c"`},
		{"error as an array", mpMap(append(rep, "e", []byte{0x93, 0x01, 0xa1, 'm', 0xc0})...), true, `field "e"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var libErr, err error
			rules := envelopeRules
			if tt.reply {
				rules = replyRules
				_, libErr = libraryUnmarshalReply(tt.in)
				_, err = UnmarshalReply(tt.in)
			} else {
				_, libErr = libraryUnmarshalEnvelope(tt.in)
				_, err = UnmarshalEnvelope(tt.in)
			}
			if libErr != nil {
				t.Fatalf("the library rejects %x: %v", tt.in, libErr)
			}
			if libraryQuirk(tt.in, rules) == "" {
				t.Errorf("libraryQuirk does not recognise %x", tt.in)
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) || errors.Is(err, ErrEnvelopeVersion) {
				t.Errorf("decoder error %v, want one about %s", err, tt.field)
			}
		})
	}
}
