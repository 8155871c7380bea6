package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mcpstream/mcpstream/schema"
)

// jsonAny decodes JSON text with encoding/json into any.
func jsonAny(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("encoding/json cannot decode %.200q: %v", data, err)
	}
	return v
}

// fixUTF8 replaces each byte of invalid UTF-8 with U+FFFD, as encoding/json
// does when decoding a string.
func fixUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// normalize turns a value decoded by vmihailenco/msgpack into the shape
// encoding/json gives the equivalent JSON: float64 numbers, valid UTF-8
// strings, []any and map[string]any. ok is false for values JSON cannot
// hold, and for maps whose keys collide once made valid UTF-8 (then the
// surviving entry depends on map order).
func normalize(v any) (any, bool) {
	switch v := v.(type) {
	case nil, bool, float64:
		return v, true
	case string:
		return fixUTF8(v), true
	case float32:
		// MsgpackToJSON writes the shortest text that round-trips float32.
		f, err := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
		return f, err == nil
	case int8:
		return float64(v), true
	case int16:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint8:
		return float64(v), true
	case uint16:
		return float64(v), true
	case uint32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			n, ok := normalize(e)
			if !ok {
				return nil, false
			}
			out[i] = n
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, ok := normalize(e)
			if !ok {
				return nil, false
			}
			k = fixUTF8(k)
			if _, dup := out[k]; dup {
				return nil, false
			}
			out[k] = n
		}
		return out, true
	}
	return nil, false
}

// stdMsgpack decodes msgpack with vmihailenco/msgpack and normalizes it.
func stdMsgpack(t testing.TB, mp []byte) (any, bool) {
	t.Helper()
	var v any
	if err := msgpack.Unmarshal(mp, &v); err != nil {
		t.Fatalf("vmihailenco/msgpack cannot decode % .64x: %v", mp, err)
	}
	return normalize(v)
}

func nested(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

func bigArray(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i - n/2))
	}
	b.WriteByte(']')
	return b.String()
}

func bigObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		// Descending keys, so order preservation is visible.
		fmt.Fprintf(&b, `"k%07d":%d`, n-i, i)
	}
	b.WriteByte('}')
	return b.String()
}

func quoted(s string) string { return `"` + s + `"` }

type compactCase struct {
	name string
	in   string
	want string // exact MsgpackToJSON output; "" means in
}

func compactCases() []compactCase {
	return []compactCase{
		{"null", `null`, ""},
		{"true", `true`, ""},
		{"false", `false`, ""},
		{"empty object", `{}`, ""},
		{"empty array", `[]`, ""},
		{"empty string", `""`, ""},
		{"nested empties", `[{},[],{"a":{}},[[]]]`, ""},
		{"nested", `{"b":1,"a":[true,false,null],"c":{"d":"e","f":[1,[2,[3]]]}}`, ""},
		{"key order kept", `{"zebra":1,"apple":2,"mango":{"z":0,"a":1}}`, ""},
		{"duplicate keys kept", `{"a":1,"a":2}`, ""},
		{"whitespace", " \t\r\n{ \"a\" :\n[ 1 , 2 ] , \"b\" : { } }\n ", `{"a":[1,2],"b":{}}`},
		{"simple escapes", `"a\"b\\c\/d\b\f\n\r\t"`, `"a\"b\\c/d\u0008\u000c\n\r\t"`},
		{"unicode escapes", `"\u00e9\u4E2D\u0041"`, `"é中A"`},
		{"surrogate pair", `"\ud83d\ude00!"`, `"😀!"`},
		{"lone high surrogate", `"\ud800"`, `"` + "\uFFFD" + `"`},
		{"lone low surrogate", `"\udc00x"`, `"` + "\uFFFD" + `x"`},
		{"high then non-surrogate", `"\ud800\u0041"`, `"` + "\uFFFD" + `A"`},
		{"high then high-low pair", `"\ud800\ud83d\ude00"`, `"` + "\uFFFD" + `😀"`},
		{"reversed pair", `"\ude00\ud83d"`, `"` + "\uFFFD\uFFFD" + `"`},
		{"high then raw text", `"\ud83dabc"`, `"` + "\uFFFD" + `abc"`},
		{"escaped NUL", `"a\u0000b"`, ""},
		{"invalid UTF-8", "\"a\xffb\"", "\"a\uFFFDb\""},
		{"invalid UTF-8 after escape", "\"\\n\xfe\xff\"", "\"\\n\uFFFD\uFFFD\""},
		{"truncated multibyte", "\"\xe2\x82\"", "\"\uFFFD\uFFFD\""},
		{"overlong encoding", "\"\xc0\xaf\"", "\"\uFFFD\uFFFD\""},
		{"encoded surrogate", "\"\xed\xa0\x80\"", "\"\uFFFD\uFFFD\uFFFD\""},
		{"raw U+FFFD", "\"\uFFFD\"", ""},
		{"control chars", `"\u0001\u001f\u0008\u000b"`, ""},
		{"DEL is not escaped", `"\u007f"`, "\"\x7f\""},
		{"U+2028 and U+2029 raw", "\"a\u2028b\u2029c\"", `"a\u2028b\u2029c"`},
		{"U+2028 escaped", `"\u2028"`, ""},
		{"html chars", `"<a href='x'>&amp;</a>"`, ""},
		{"non-BMP raw", `"𝄞🎉"`, ""},
		{"key with escapes", `{"a\"b\u0000":"\t"}`, `{"a\"b\u0000":"\t"}`},
		{"zero", `0`, ""},
		{"ints", `[1,-1,31,-32,-33,127,128,-128,-129,255,256,-32768,-32769,65535,65536]`, ""},
		{"int32 bounds", `[2147483647,2147483648,-2147483648,-2147483649,4294967295,4294967296]`, ""},
		{"int64 bounds", `[9223372036854775807,-9223372036854775808,9223372036854775808]`, ""},
		{"uint64 max", `18446744073709551615`, ""},
		{"beyond uint64", `18446744073709551616`, `18446744073709552000`},
		{"beyond int64 negative", `-9223372036854775809`, `-9223372036854776000`},
		{"huge integer", `123456789012345678901234567890`, `1.2345678901234568e+29`},
		{"negative zero int", `-0`, `0`},
		{"float 1.5", `1.5`, ""},
		{"float 1e-7", `1e-7`, ""},
		{"float 1E-07", `1E-07`, `1e-7`},
		{"float 1e21", `1e21`, `1e+21`},
		{"float 1e20", `1e20`, `100000000000000000000`},
		{"float 1e-6", `0.000001`, ""},
		{"negative zero float", `-0.0`, `-0`},
		{"integral float", `1.0`, `1`},
		{"exponent int", `1E2`, `100`},
		{"fraction", `123456789.125`, ""},
		{"small", `2.5e-8`, ""},
		{"denormal", `5e-324`, ""},
		{"max float", `1.7976931348623157e308`, `1.7976931348623157e+308`},
		{"underflow", `1e-400`, `0`},
		{"negative underflow", `-1e-400`, `-0`},
		{"pi", `3.141592653589793`, ""},
		{"many digits", `0.1000000000000000055511151231257827`, `0.1`},
		{"array 15", bigArray(15), ""},
		{"array 16", bigArray(16), ""},
		{"array 65535", bigArray(65535), ""},
		{"array 65536", bigArray(65536), ""},
		{"object 15", bigObject(15), ""},
		{"object 16", bigObject(16), ""},
		{"object 65535", bigObject(65535), ""},
		{"object 65536", bigObject(65536), ""},
		{"string 31", quoted(strings.Repeat("a", 31)), ""},
		{"string 32", quoted(strings.Repeat("b", 32)), ""},
		{"string 255", quoted(strings.Repeat("c", 255)), ""},
		{"string 256", quoted(strings.Repeat("d", 256)), ""},
		{"string 65535", quoted(strings.Repeat("e", 65535)), ""},
		{"string 65536", quoted(strings.Repeat("f", 65536)), ""},
		{"escaped string 300", quoted(strings.Repeat(`\n`, 300)), ""},
		{"long key", `{` + quoted(strings.Repeat("k", 70000)) + `:1}`, ""},
		{"big nested in array", `[` + bigObject(20) + `,` + bigArray(70000) + `,` + quoted(strings.Repeat("x", 300)) + `]`, ""},
		{"depth MaxDepth arrays", nested("[", "]", schema.MaxDepth, "1"), ""},
		{"depth MaxDepth objects", nested(`{"a":`, "}", schema.MaxDepth, "null"), ""},
		{"depth MaxDepth empty", nested("[", "]", schema.MaxDepth, ""), ""},
	}
}

func TestCompactRoundTrip(t *testing.T) {
	for _, tt := range compactCases() {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			mp, err := schema.JSONToMsgpack(nil, in)
			if err != nil {
				t.Fatalf("JSONToMsgpack: %v", err)
			}
			out, err := schema.MsgpackToJSON(nil, mp)
			if err != nil {
				t.Fatalf("MsgpackToJSON: %v", err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(out) != want {
				t.Errorf("output text\n got %.300q\nwant %.300q", out, want)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %.300q", out)
			}
			wantV := jsonAny(t, in)
			if got := jsonAny(t, out); !reflect.DeepEqual(got, wantV) {
				t.Errorf("semantic mismatch\n got %.300v\nwant %.300v", got, wantV)
			}
			// The bytes are standard msgpack.
			std, ok := stdMsgpack(t, mp)
			if !ok {
				t.Fatalf("vmihailenco/msgpack decoded an unexpected shape")
			}
			if !reflect.DeepEqual(std, wantV) {
				t.Errorf("vmihailenco/msgpack decodes to\n%.300v\nwant %.300v", std, wantV)
			}
		})
	}
}

// Compaction is stable: a second pass over expanded JSON gives the same
// msgpack when the input had no floats.
func TestCompactStable(t *testing.T) {
	for _, in := range []string{`{"a":[1,-2,"x\u2028",null,{"b":true}]}`, bigObject(70), bigArray(70000), "\"\xff\\ud800\""} {
		mp1, err := schema.JSONToMsgpack(nil, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		js, err := schema.MsgpackToJSON(nil, mp1)
		if err != nil {
			t.Fatal(err)
		}
		mp2, err := schema.JSONToMsgpack(nil, js)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mp1, mp2) {
			t.Errorf("%.60s: second compaction differs", in)
		}
	}
}

func TestCompactKeyOrderText(t *testing.T) {
	in := `{"z":1,"y":{"c":1,"b":2,"a":3},"x":[{"2":0,"1":0}],"w":null}`
	mp, err := schema.JSONToMsgpack(nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := schema.MsgpackToJSON(nil, mp)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{`"z"`, `"y"`, `"c"`, `"b"`, `"a"`, `"x"`, `"2"`, `"1"`, `"w"`}
	last := -1
	for _, k := range keys {
		i := bytes.Index(out, []byte(k))
		if i <= last {
			t.Fatalf("key %s out of order in %s", k, out)
		}
		last = i
	}
}

func TestCompactHeaders(t *testing.T) {
	str := func(n int) string { return quoted(strings.Repeat("s", n)) }
	tests := []struct {
		in   string
		want []byte // leading bytes of the encoding
	}{
		{`[]`, []byte{0x90}},
		{bigArray(15), []byte{0x9f}},
		{bigArray(16), []byte{0xdc, 0x00, 0x10}},
		{bigArray(65535), []byte{0xdc, 0xff, 0xff}},
		{bigArray(65536), []byte{0xdd, 0x00, 0x01, 0x00, 0x00}},
		{`{}`, []byte{0x80}},
		{bigObject(15), []byte{0x8f}},
		{bigObject(16), []byte{0xde, 0x00, 0x10}},
		{bigObject(65535), []byte{0xde, 0xff, 0xff}},
		{bigObject(65536), []byte{0xdf, 0x00, 0x01, 0x00, 0x00}},
		{str(0), []byte{0xa0}},
		{str(31), []byte{0xbf}},
		{str(32), []byte{0xd9, 32}},
		{str(255), []byte{0xd9, 0xff}},
		{str(256), []byte{0xda, 0x01, 0x00}},
		{str(65535), []byte{0xda, 0xff, 0xff}},
		{str(65536), []byte{0xdb, 0x00, 0x01, 0x00, 0x00}},
		{`[[1,2],{"a":[]}]`, []byte{0x92, 0x92, 0x01, 0x02, 0x81, 0xa1, 'a', 0x90}},
	}
	for _, tt := range tests {
		mp, err := schema.JSONToMsgpack(nil, []byte(tt.in))
		if err != nil {
			t.Fatalf("%.40s: %v", tt.in, err)
		}
		if !bytes.HasPrefix(mp, tt.want) {
			t.Errorf("%.40s...: encoding starts % x, want % x", tt.in, mp[:min(len(mp), len(tt.want))], tt.want)
		}
	}
}

func TestCompactNumberEncoding(t *testing.T) {
	f64 := func(f float64) []byte {
		b := []byte{0xcb}
		return append(b, byte(math.Float64bits(f)>>56), byte(math.Float64bits(f)>>48), byte(math.Float64bits(f)>>40),
			byte(math.Float64bits(f)>>32), byte(math.Float64bits(f)>>24), byte(math.Float64bits(f)>>16),
			byte(math.Float64bits(f)>>8), byte(math.Float64bits(f)))
	}
	tests := []struct {
		in   string
		want []byte
	}{
		{`0`, []byte{0x00}},
		{`127`, []byte{0x7f}},
		{`128`, []byte{0xcc, 0x80}},
		{`255`, []byte{0xcc, 0xff}},
		{`256`, []byte{0xcd, 0x01, 0x00}},
		{`65535`, []byte{0xcd, 0xff, 0xff}},
		{`65536`, []byte{0xce, 0x00, 0x01, 0x00, 0x00}},
		{`4294967295`, []byte{0xce, 0xff, 0xff, 0xff, 0xff}},
		{`4294967296`, []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}},
		{`18446744073709551615`, []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{`-1`, []byte{0xff}},
		{`-32`, []byte{0xe0}},
		{`-33`, []byte{0xd0, 0xdf}},
		{`-128`, []byte{0xd0, 0x80}},
		{`-129`, []byte{0xd1, 0xff, 0x7f}},
		{`-32768`, []byte{0xd1, 0x80, 0x00}},
		{`-32769`, []byte{0xd2, 0xff, 0xff, 0x7f, 0xff}},
		{`-2147483648`, []byte{0xd2, 0x80, 0, 0, 0}},
		{`-2147483649`, []byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}},
		{`-9223372036854775808`, []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{`1.5`, f64(1.5)},
		{`1.0`, f64(1)},
		{`-0.0`, f64(math.Copysign(0, -1))},
		{`1e2`, f64(100)},
		{`18446744073709551616`, f64(18446744073709551616)},
		{`-9223372036854775809`, f64(-9223372036854775809)},
		{`true`, []byte{0xc3}},
		{`false`, []byte{0xc2}},
		{`null`, []byte{0xc0}},
	}
	for _, tt := range tests {
		mp, err := schema.JSONToMsgpack(nil, []byte(tt.in))
		if err != nil || !bytes.Equal(mp, tt.want) {
			t.Errorf("JSONToMsgpack(%s) = % x, %v; want % x", tt.in, mp, err, tt.want)
		}
	}
}

func TestJSONToMsgpackErrors(t *testing.T) {
	tests := []string{
		"", " ", "\n\t", "{", "}", "[", "]", "[1,]", "[,1]", "[1 2]", "{,}", `{"a"}`, `{"a":}`, `{"a":1,}`,
		`{a:1}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1]`, `[1}`, `{1:2}`, `{"a":1,"b"}`, `["a":1]`,
		"tru", "nul", "fals", "True", "NULL", "nan", "NaN", "Infinity", "-Infinity", "undefined",
		"+1", ".5", "1.", "1.e3", "1e", "1e+", "1E-", "-", "--1", "-a", "0x10", "1_000", "١",
		`"abc`, `"\`, `"\"`, `"\x"`, `"\a"`, `"\U0041"`, `"\u12"`, `"\u12G4"`, `"\u"`, `"\ud800\u12"`, `"\ud800\uZZZZ"`,
		"\"a\x01b\"", "\"\t\"", "\"\n\"", "\"\x00\"", `'a'`, "\x00", "\xef\xbb\xbf{}", "/* c */{}", "[1]//",
		// trailing data
		"01", "-01", "00", "1 2", "{} {}", "[]x", `"a""b"`, "truex", "nulll", "0.5.5", "1e5e5", "[]]", "{}}", "1,",
		// out of float64 range
		"1e999", "-1e999", "1E400", "[1,2,1e309]", `{"a":` + "1" + strings.Repeat("0", 400) + `}`,
	}
	for _, in := range tests {
		dst := []byte("keep")
		out, err := schema.JSONToMsgpack(dst, []byte(in))
		if err == nil {
			t.Errorf("JSONToMsgpack(%q) succeeded: % x", in, out)
			continue
		}
		if string(out) != "keep" {
			t.Errorf("JSONToMsgpack(%q) returned %q on error, want dst unchanged", in, out)
		}
		if errors.Is(err, schema.ErrTooDeep) {
			t.Errorf("JSONToMsgpack(%q): unexpected ErrTooDeep", in)
		}
		var v any
		if json.Valid([]byte(in)) && json.Unmarshal([]byte(in), &v) == nil {
			t.Errorf("JSONToMsgpack(%q) rejected what encoding/json accepts: %v", in, err)
		}
	}
}

func TestJSONToMsgpackDepth(t *testing.T) {
	mixed := func(n int) string {
		var open, close strings.Builder
		for i := range n {
			if i%2 == 0 {
				open.WriteString(`[0,`)
				close.WriteString(`]`)
			} else {
				open.WriteString(`{"k":`)
				close.WriteString(`}`)
			}
		}
		c := []byte(close.String())
		for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
			c[i], c[j] = c[j], c[i]
		}
		return open.String() + "1" + string(c)
	}
	shapes := map[string]func(n int) string{
		"arrays":       func(n int) string { return nested("[", "]", n, "") },
		"objects":      func(n int) string { return nested(`{"a":`, "}", n-1, "{}") },
		"mixed":        mixed,
		"after values": func(n int) string { return `[1,"[",{"x":` + nested("[", "]", n-2, "") + `}]` },
	}
	for name, shape := range shapes {
		ok := shape(schema.MaxDepth)
		if _, err := schema.JSONToMsgpack(nil, []byte(ok)); err != nil {
			t.Errorf("%s: depth MaxDepth rejected: %v", name, err)
		}
		if err := schema.CheckDepth([]byte(ok), schema.MaxDepth); err != nil {
			t.Errorf("%s: CheckDepth(MaxDepth) = %v", name, err)
		}
		for _, n := range []int{schema.MaxDepth + 1, schema.MaxDepth + 2, 10 * schema.MaxDepth} {
			deep := shape(n)
			if !json.Valid([]byte(deep)) {
				t.Fatalf("%s: bad test input %s", name, deep)
			}
			if _, err := schema.JSONToMsgpack(nil, []byte(deep)); !errors.Is(err, schema.ErrTooDeep) {
				t.Errorf("%s: depth %d: err = %v, want ErrTooDeep", name, n, err)
			}
			if err := schema.CheckDepth([]byte(deep), schema.MaxDepth); !errors.Is(err, schema.ErrTooDeep) {
				t.Errorf("%s: CheckDepth depth %d = %v", name, n, err)
			}
		}
	}
	// Unterminated deep input is still too deep, not a panic.
	if _, err := schema.JSONToMsgpack(nil, []byte(strings.Repeat("[", 100000))); !errors.Is(err, schema.ErrTooDeep) {
		t.Errorf("unterminated deep input: %v", err)
	}
}

func TestJSONToMsgpackAppends(t *testing.T) {
	dst := []byte{0x01, 0x02}
	out, err := schema.JSONToMsgpack(dst, []byte(`{"a":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, []byte{0x01, 0x02, 0x81, 0xa1, 'a', 0x91, 0x01}) {
		t.Errorf("got % x", out)
	}
	// A failed conversion leaves dst's length alone.
	out, err = schema.JSONToMsgpack(dst, []byte(`{"a":[1,`))
	if err == nil || !bytes.Equal(out, dst) {
		t.Errorf("on error: % x, %v", out, err)
	}
	// MsgpackToJSON appends too.
	js, err := schema.MsgpackToJSON([]byte("x="), []byte{0x92, 0xc3, 0xa1, 'y'})
	if err != nil || string(js) != `x=[true,"y"]` {
		t.Errorf("MsgpackToJSON append: %s %v", js, err)
	}
	js, err = schema.MsgpackToJSON([]byte("x="), []byte{0x92, 0xc3})
	if err == nil || string(js) != "x=" {
		t.Errorf("MsgpackToJSON append on error: %q %v", js, err)
	}
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		in  string
		max int
		ok  bool
	}{
		{``, 0, true},
		{`1`, 0, true},
		{`[]`, 0, false},
		{`[]`, 1, true},
		{`{}`, 0, false},
		{`[[]]`, 1, false},
		{`[[]]`, 2, true},
		{`[[],[],[]]`, 2, true},
		{`[{},{"a":[]}]`, 2, false},
		{`[{},{"a":[]}]`, 3, true},
		{`"[[[["`, 0, true},
		{`"a\"[[[["`, 0, true},
		{`["a\"[[[["]`, 1, true},
		{`["\\",[1]]`, 1, false},
		{`["\\",[1]]`, 2, true},
		{`["\\\"[",[1]]`, 1, false},
		{`{"a":"}}}}{{{{"}`, 1, true},
		{`{"[":"]","{":[["x"]]}`, 2, false},
		{`{"[":"]","{":[["x"]]}`, 3, true},
		{`[[["]"]]]`, 3, true},
		{`[[["]"]]]`, 2, false},
		{`["\u005b\u005b"]`, 1, true},
		{nested("[", "]", schema.MaxDepth, ""), schema.MaxDepth, true},
		{nested("[", "]", schema.MaxDepth+1, ""), schema.MaxDepth, false},
		{nested(`{"x":"[{",`+`"a":`, "}", schema.MaxDepth, "0"), schema.MaxDepth, true},
		{strings.Repeat("[", 1000), 999, false},
		{`"unterminated [[[`, 0, true},
		{`"ends in backslash\`, 0, true},
	}
	for _, tt := range tests {
		err := schema.CheckDepth([]byte(tt.in), tt.max)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, schema.ErrTooDeep) {
			t.Errorf("CheckDepth(%.60s, %d) = %v, want ok=%v", tt.in, tt.max, err, tt.ok)
		}
	}
}
