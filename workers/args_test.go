package workers

import (
	"reflect"
	"testing"
	"time"
)

// flatIn has a field of every kind the fast way decodes.
type flatIn struct {
	S   string  `json:"s" jsonschema:"a string"`
	B   bool    `json:"b,omitempty"`
	I   int     `json:"i,omitempty"`
	I8  int8    `json:"i8,omitempty"`
	I64 int64   `json:"i64,omitempty"`
	U   uint    `json:"u,omitempty"`
	U8  uint8   `json:"u8,omitempty"`
	U64 uint64  `json:"u64,omitempty"`
	F   float64 `json:"f,omitempty"`
	Pw  string  `json:"pw,omitempty" mcpstream:"sensitive"`
	Cap string  // no tag: its Go name, required
	Ign string  `json:"-"`
	low string
}

// flatWays is the fast and the general way for In's arguments.
func flatWays[In any](tb testing.TB) (*flatArgs, func(toolArgs) (In, error)) {
	tb.Helper()
	_, published, err := inputSchema[In](nil)
	if err != nil {
		tb.Fatal(err)
	}
	validator, err := compileSchema(published)
	if err != nil {
		tb.Fatal(err)
	}
	general := func(a toolArgs) (In, error) {
		var v In
		err := a.decode(validator, &v)
		return v, err
	}
	return newFlatArgs(reflect.TypeFor[In](), published), general
}

// FuzzFlatArgs holds the fast way of typed arguments to the general one:
// arguments the fast way decodes, the general way accepts, into the same
// value. The input is JSON text, or else taken as the envelope's msgpack.
func FuzzFlatArgs(f *testing.F) {
	for _, s := range []string{
		`{"s":"x","Cap":"c"}`,
		`{"s":"héllo \u2028 \"q\"","Cap":"","b":true,"i":-3,"i8":-128,"i64":9007199254740993,"u":7,"u8":255,"u64":18446744073709551615,"f":-0.0,"pw":"p"}`,
		`{"s":"x","Cap":"c","f":1e308,"i":9223372036854775807}`,
		`{"s":"x","Cap":"c","f":12345678901234567890}`,
		`{"s":"x","Cap":"c","i8":128}`,
		`{"s":"x","Cap":"c","u8":-1}`,
		`{"s":"x","Cap":"c","i":1.0}`,
		`{"s":"x","Cap":"c","i":1.5}`,
		`{"s":"x","Cap":"c","S":"y"}`,
		`{"s":"x","cap":"c"}`,
		`{"s":"x","Cap":"c","s":"again"}`,
		`{"s":null,"Cap":"c"}`,
		`{"s":"x","Cap":"c","Ign":"i","low":"l"}`,
		`{"s":["x"],"Cap":"c"}`,
		`{"Cap":"c"}`,
		`{}`,
		`[]`,
		`"s"`,
		"\x82\xa1s\xa2\xff\xfe\xa3Cap\xa0",          // invalid UTF-8 in a string
		"\x82\xa1s\xa1x\xa3Cap\xca\x3f\x80\x00\x00", // a float32
		"\x82\xa1s\xa1x\xa3Cap\xa1c\x00",            // trailing data
		"\x82\xa1s\xa1x\xa3Cap",                     // truncated
		"\x81\xa1s\xd9\x01x",                        // a str8 header longer than the rest
	} {
		f.Add(s)
	}
	flat, general := flatWays[flatIn](f)
	if flat == nil {
		f.Fatal("flatIn has no fast way")
	}
	f.Fuzz(func(t *testing.T, text string) {
		args := argsOf(t, text)
		var fast flatIn
		if !flat.decode(args.msgpack, reflect.ValueOf(&fast).Elem()) {
			return // the general way's, whatever it says
		}
		want, err := general(args)
		if err != nil {
			t.Fatalf("%q: the fast way decoded %+v, the general way refused: %v", text, fast, err)
		}
		if fast != want {
			t.Fatalf("%q: the fast way decoded %+v, the general way %+v", text, fast, want)
		}
	})
}

// TestFlatArgsTaken: the fast way serves a struct of scalars with an
// inferred schema, and decodes its usual arguments; not a type or a schema
// it cannot answer for.
func TestFlatArgsTaken(t *testing.T) {
	flat, general := flatWays[flatIn](t)
	args := argsOf(t, `{"s":"x","Cap":"c","i8":-5,"u64":18446744073709551615,"f":2.5,"b":true}`)
	var got flatIn
	if !flat.decode(args.msgpack, reflect.ValueOf(&got).Elem()) {
		t.Fatal("the fast way refused valid arguments")
	}
	if want, err := general(args); err != nil || got != want {
		t.Fatalf("fast %+v, general %+v (%v)", got, want, err)
	}
	if flat.decode(argsOf(t, `{"s":"x"}`).msgpack, reflect.ValueOf(&got).Elem()) {
		t.Error("the fast way took arguments without a required field")
	}
	if flat, _ := flatWays[echoIn](t); flat == nil {
		t.Error("no fast way for a struct of one string")
	}

	type nested struct {
		S   string   `json:"s"`
		Tag []string `json:"tags"`
	}
	type float32In struct {
		F float32 `json:"f"`
	}
	type stringOpt struct {
		N int `json:"n,string"`
	}
	type timeIn struct {
		At time.Time `json:"at"`
	}
	type embedded struct{ echoIn }
	type named struct {
		D time.Duration `json:"d"` // an int64, but a type of its own
	}
	for name, flat := range map[string]*flatArgs{
		"nested":         func() *flatArgs { f, _ := flatWays[nested](t); return f }(),
		"float32":        func() *flatArgs { f, _ := flatWays[float32In](t); return f }(),
		"string option":  func() *flatArgs { f, _ := flatWays[stringOpt](t); return f }(),
		"time":           func() *flatArgs { f, _ := flatWays[timeIn](t); return f }(),
		"embedded":       func() *flatArgs { f, _ := flatWays[embedded](t); return f }(),
		"map":            func() *flatArgs { f, _ := flatWays[map[string]any](t); return f }(),
		"given minimum":  newFlatArgs(reflect.TypeFor[echoIn](), []byte(`{"type":"object","properties":{"text":{"type":"string","minLength":2}},"required":["text"]}`)),
		"given pattern":  newFlatArgs(reflect.TypeFor[flatIn](), []byte(`{"type":"object","properties":{},"patternProperties":{"^x":{}}}`)),
		"another range":  newFlatArgs(reflect.TypeFor[struct{ N int8 }](), []byte(`{"type":"object","properties":{"N":{"type":"integer","minimum":0}}}`)),
		"other property": newFlatArgs(reflect.TypeFor[echoIn](), []byte(`{"type":"object","properties":{"text":{"type":"string"},"more":{"type":"string"}}}`)),
	} {
		if flat != nil {
			t.Errorf("%s: a fast way where the general one must answer", name)
		}
	}
	if d, _ := flatWays[named](t); d != nil {
		// time.Duration has no JSON method: if its schema is an integer's,
		// the fast way serves it, and must decode it as encoding/json does.
		var got, want named
		a := argsOf(t, `{"d":1500}`)
		if !d.decode(a.msgpack, reflect.ValueOf(&got).Elem()) {
			t.Fatal("the fast way refused a Duration")
		}
		_, general := flatWays[named](t)
		if want, _ = general(a); got != want {
			t.Errorf("Duration: fast %v, general %v", got, want)
		}
	}
}

// echoIn is the demo echo tool's input.
type echoIn struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// BenchmarkFlatArgs compares the two ways of a typed tool's arguments on
// the demo echo tool's: the fast one, and the general one it replaces
// for such a tool (decode to a value, validate, decode the JSON).
func BenchmarkFlatArgs(b *testing.B) {
	flat, general := flatWays[echoIn](b)
	args := argsOf(b, `{"text":"hello, a short echo"}`)
	b.Run("way=fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v echoIn
			if !flat.decode(args.msgpack, reflect.ValueOf(&v).Elem()) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("way=general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := general(args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
