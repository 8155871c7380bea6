package schema_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mcpstream/mcpstream/schema"
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// richMsgpack uses every msgpack format MsgpackToJSON accepts, including the
// wide headers JSONToMsgpack never writes for short values.
func richMsgpack() ([]byte, string) {
	mp := cat(
		[]byte{0xdf}, be32(6), // map32 with 6 entries
		[]byte{0xa4}, []byte("ints"),
		[]byte{0xdd}, be32(13), // array32
		[]byte{0x05, 0xe0, 0xcc, 0xff}, []byte{0xcd}, be16(0xffff), []byte{0xce}, be32(0xffffffff),
		[]byte{0xcf}, be64(math.MaxUint64), []byte{0xd0, 0x80, 0xd1}, be16(0x8000), []byte{0xd2}, be32(0x80000000),
		[]byte{0xd3}, be64(1<<63), []byte{0xd0, 0x05, 0xcc, 0x00, 0xd3}, be64(math.MaxUint64),
		[]byte{0xd9, 4}, []byte("strs"),
		[]byte{0xdc}, be16(4), // array16
		[]byte{0xa1, 'a', 0xd9, 2, 'b', 'c', 0xda}, be16(3), []byte("def"), []byte{0xdb}, be32(1), []byte("g"),
		[]byte{0xda}, be16(5), []byte("float"),
		[]byte{0x92, 0xca}, be32(math.Float32bits(0.1)), []byte{0xcb}, be64(math.Float64bits(-2.5e-9)),
		[]byte{0xdb}, be32(4), []byte("misc"),
		[]byte{0x93, 0xc0, 0xc2, 0xc3},
		[]byte{0xa1, 'm'},
		[]byte{0xde}, be16(2), // map16
		[]byte{0xa0, 0x80, 0xa1, 'x', 0x90},
		[]byte{0xa1, 's'},
		[]byte{0xa4, 'q', '"', '\\', 0x01},
	)
	want := `{"ints":[5,-32,255,65535,4294967295,18446744073709551615,-128,-32768,-2147483648,-9223372036854775808,5,0,-1],` +
		`"strs":["a","bc","def","g"],"float":[0.1,-2.5e-9],"misc":[null,false,true],"m":{"":{},"x":[]},"s":"q\"\\\u0001"}`
	return mp, want
}

func TestMsgpackToJSONFormats(t *testing.T) {
	mp, want := richMsgpack()
	out, err := schema.MsgpackToJSON(nil, mp)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	std, ok := stdMsgpack(t, mp)
	if !ok || !reflect.DeepEqual(std, jsonAny(t, out)) {
		t.Errorf("vmihailenco/msgpack disagrees: %v", std)
	}
}

func TestMsgpackToJSONTruncated(t *testing.T) {
	rich, _ := richMsgpack()
	inputs := [][]byte{rich}
	for _, js := range []string{`{"a":[1,-200,70000,1.5,"xyz",null,true,{"b":{}}],"c":"` + strings.Repeat("z", 300) + `"}`, bigObject(17), bigArray(20)} {
		mp, err := schema.JSONToMsgpack(nil, []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, mp)
	}
	for _, mp := range inputs {
		if _, err := schema.MsgpackToJSON(nil, mp); err != nil {
			t.Fatalf("full input rejected: %v", err)
		}
		for n := range len(mp) {
			if out, err := schema.MsgpackToJSON(nil, mp[:n]); err == nil {
				t.Fatalf("prefix %d/%d accepted: %s", n, len(mp), out)
			}
		}
	}
}

func TestMsgpackToJSONErrors(t *testing.T) {
	nan64 := cat([]byte{0xcb}, be64(0x7ff8000000000001))
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"never used", []byte{0xc1}},
		{"bin8", []byte{0xc4, 0x01, 0x00}},
		{"bin16", cat([]byte{0xc5}, be16(1), []byte{0})},
		{"bin32", cat([]byte{0xc6}, be32(1), []byte{0})},
		{"ext8", []byte{0xc7, 0x01, 0x05, 0x00}},
		{"ext16", cat([]byte{0xc8}, be16(1), []byte{5, 0})},
		{"ext32", cat([]byte{0xc9}, be32(1), []byte{5, 0})},
		{"fixext1", []byte{0xd4, 0x01, 0x00}},
		{"fixext2", []byte{0xd5, 0x01, 0, 0}},
		{"fixext4", []byte{0xd6, 0x01, 0, 0, 0, 0}},
		{"fixext8", cat([]byte{0xd7, 0x01}, be64(0))},
		{"timestamp", cat([]byte{0xd6, 0xff}, be32(0))},
		{"fixext16", cat([]byte{0xd8, 0x01}, be64(0), be64(0))},
		{"bin in array", []byte{0x91, 0xc4, 0x00}},
		{"int key", []byte{0x81, 0x01, 0x02}},
		{"nil key", []byte{0x81, 0xc0, 0x01}},
		{"bool key", []byte{0x81, 0xc3, 0x01}},
		{"array key", []byte{0x81, 0x90, 0x01}},
		{"map key", []byte{0x81, 0x80, 0x01}},
		{"bin key", []byte{0x81, 0xc4, 0x01, 'a', 0x01}},
		{"second key bad", []byte{0x82, 0xa1, 'a', 0x01, 0x05, 0x01}},
		{"float64 NaN", nan64},
		{"float64 +Inf", cat([]byte{0xcb}, be64(math.Float64bits(math.Inf(1))))},
		{"float64 -Inf", cat([]byte{0xcb}, be64(math.Float64bits(math.Inf(-1))))},
		{"float32 NaN", cat([]byte{0xca}, be32(0x7fc00000))},
		{"float32 +Inf", cat([]byte{0xca}, be32(0x7f800000))},
		{"float32 -Inf", cat([]byte{0xca}, be32(0xff800000))},
		{"NaN in map", cat([]byte{0x81, 0xa1, 'f'}, nan64)},
		{"trailing byte", []byte{0x01, 0x02}},
		{"trailing nil", []byte{0xc0, 0xc0}},
		{"trailing after array", []byte{0x90, 0x00}},
		{"trailing after map", []byte{0x80, 0x80}},
		{"str32 huge", cat([]byte{0xdb}, be32(math.MaxUint32), []byte("ab"))},
		{"str16 short", cat([]byte{0xda}, be16(0xffff), []byte("ab"))},
		{"str8 short", []byte{0xd9, 0xff, 'a'}},
		{"fixstr short", []byte{0xbf, 'a'}},
		{"array32 huge", cat([]byte{0xdd}, be32(math.MaxUint32), []byte{0x01})},
		{"array16 short", cat([]byte{0xdc}, be16(0xffff), []byte{0x01, 0x02})},
		{"fixarray short", []byte{0x9f, 0x01}},
		{"map32 huge", cat([]byte{0xdf}, be32(math.MaxUint32), []byte{0xa1, 'a', 0x01})},
		{"map16 short", cat([]byte{0xde}, be16(0xffff), []byte{0xa1, 'a', 0x01})},
		{"fixmap short", []byte{0x8f, 0xa1, 'a', 0x01}},
		{"map key str32 huge", cat([]byte{0x81, 0xdb}, be32(math.MaxUint32), []byte{'a', 0x01})},
		{"nested huge", cat([]byte{0x91, 0x91, 0xdb}, be32(0x7fffffff))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := schema.MsgpackToJSON([]byte("keep"), tt.in)
			if err == nil {
				t.Fatalf("accepted % x as %s", tt.in, out)
			}
			if string(out) != "keep" {
				t.Errorf("dst changed on error: %q", out)
			}
			if errors.Is(err, schema.ErrTooDeep) {
				t.Errorf("unexpected ErrTooDeep: %v", err)
			}
		})
	}
}

// Declared lengths must be checked against the input before anything is
// allocated.
func TestMsgpackToJSONHugeLengthsDoNotAllocate(t *testing.T) {
	inputs := [][]byte{
		cat([]byte{0xdb}, be32(math.MaxUint32)),
		cat([]byte{0xdd}, be32(math.MaxUint32), []byte{0xc0, 0xc0}),
		cat([]byte{0xdf}, be32(math.MaxUint32), []byte{0xa0, 0xc0}),
		cat([]byte{0x91, 0x81, 0xa1, 'k', 0xdd}, be32(math.MaxUint32-1)),
		cat([]byte{0x81, 0xdb}, be32(math.MaxUint32)),
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 200 {
		for _, in := range inputs {
			if _, err := schema.MsgpackToJSON(nil, in); err == nil {
				t.Fatalf("accepted % x", in)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Errorf("1000 rejected inputs allocated %d bytes", d)
	}
}

func TestMsgpackToJSONDepth(t *testing.T) {
	arrays := func(n int) []byte { return append([]byte(strings.Repeat("\x91", n-1)), 0x90) }
	maps := func(n int) []byte { return append([]byte(strings.Repeat("\x81\xa1a", n-1)), 0x80) }
	for name, shape := range map[string]func(int) []byte{"arrays": arrays, "maps": maps} {
		out, err := schema.MsgpackToJSON(nil, shape(schema.MaxDepth))
		if err != nil {
			t.Errorf("%s: depth MaxDepth rejected: %v", name, err)
		} else if _, err := schema.JSONToMsgpack(nil, out); err != nil {
			t.Errorf("%s: expanded JSON does not compact back: %v", name, err)
		}
		for _, n := range []int{schema.MaxDepth + 1, 100000} {
			if _, err := schema.MsgpackToJSON(nil, shape(n)); !errors.Is(err, schema.ErrTooDeep) {
				t.Errorf("%s: depth %d: err = %v, want ErrTooDeep", name, n, err)
			}
		}
	}
}

// Msgpack from another encoder expands like encoding/json would marshal the
// same values.
func TestMsgpackToJSONFromEncoder(t *testing.T) {
	values := []any{
		nil, true, false, int8(-100), int16(-30000), int32(-2000000000), int64(math.MinInt64),
		uint8(200), uint16(60000), uint32(4000000000), uint64(math.MaxUint64), 0, -1, 1 << 40,
		float32(0.1), float32(1e-7), float32(3.4028235e38), float32(math.Copysign(0, -1)), float32(16777216),
		0.1, 1e-7, 1e21, 1e20, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 100.0,
		"", "plain", "quote\" backslash\\ nl\n tab\t ctrl\x01\x1f del\x7f", "<>&", "\u2028\u2029", "é😀",
		strings.Repeat("long ", 20000),
		[]any{}, []any{1, "a", nil, []any{true}},
		map[string]any{}, map[string]any{"k": map[string]any{"n": []any{1.5, "x"}}},
	}
	for _, v := range values {
		mp, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out, err := schema.MsgpackToJSON(nil, mp)
		if err != nil {
			t.Errorf("MsgpackToJSON(%T %.40v): %v", v, v, err)
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(jsonAny(t, out), jsonAny(t, want)) {
			t.Errorf("%T %.40v: got %.100s, want %.100s", v, v, out, want)
		}
		if _, isMap := v.(map[string]any); !isMap {
			if _, isString := v.(string); !isString && string(out) != string(want) {
				t.Errorf("%T %.40v: text %.100s, encoding/json writes %.100s", v, v, out, want)
			}
		}
	}
}

// Floats are written exactly as encoding/json writes them.
func TestMsgpackToJSONFloatText(t *testing.T) {
	floats := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.5, 1.5, 0.1, 0.2, 1.0 / 3, 1e-6, 9.99999e-7, 1e-7, 1.5e-9, 1e-10,
		1e20, 1e21, 1.5e21, 123456789e15, 1e100, 1e-100, 5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.Pi, math.E, 12345.678, 1 << 53, 1<<53 + 1, 9007199254740993, -2.5e-308,
	}
	for _, f := range floats {
		mp := cat([]byte{0xcb}, be64(math.Float64bits(f)))
		out, err := schema.MsgpackToJSON(nil, mp)
		want, _ := json.Marshal(f)
		if err != nil || string(out) != string(want) {
			t.Errorf("float64 %v: got %s %v, want %s", f, out, err, want)
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		mp = cat([]byte{0xca}, be32(math.Float32bits(f32)))
		out, err = schema.MsgpackToJSON(nil, mp)
		want, _ = json.Marshal(f32)
		if err != nil || string(out) != string(want) {
			t.Errorf("float32 %v: got %s %v, want %s", f32, out, err, want)
		}
	}
}

// Strings with invalid UTF-8 from another encoder become U+FFFD.
func TestMsgpackToJSONInvalidUTF8(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{"a\xffb", `"a\ufffdb"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"ok\u00e9\xc3", `"oké\ufffd"`},
	}
	for _, tt := range tests {
		mp := append([]byte{0xa0 | byte(len(tt.raw))}, tt.raw...)
		out, err := schema.MsgpackToJSON(nil, mp)
		if err != nil || string(out) != tt.want {
			t.Errorf("%q: got %s %v, want %s", tt.raw, out, err, tt.want)
		}
		var got, want string
		if json.Unmarshal(out, &got) != nil || json.Unmarshal([]byte(`"`+tt.raw+`"`), &want) != nil || got != want {
			t.Errorf("%q: decodes to %q, encoding/json gives %q", tt.raw, got, want)
		}
		key := append([]byte{0x81}, mp...)
		key = append(key, 0x01)
		if out, err := schema.MsgpackToJSON(nil, key); err != nil || string(out) != "{"+tt.want+":1}" {
			t.Errorf("key %q: got %s %v", tt.raw, out, err)
		}
	}
}
