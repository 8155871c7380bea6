package schema_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// TestCheckText: what the JSON grammar (and so json.Valid) accepts but is
// not interchangeable JSON text is refused: invalid UTF-8 anywhere in a
// string, and lone surrogates in \u escapes; proper pairs, other escapes
// and an escaped backslash before a u are fine.
func TestCheckText(t *testing.T) {
	cases := []struct {
		text string
		ok   bool
	}{
		{`{"a":"plain"}`, true},
		{`{"a":"h\u00e9 \ud83d\ude00 \\ud800 \"\ud800\udc00"}`, true},
		{"{\"a\":\"caf\xc3\xa9\"}", true},
		{"{\"a\":\"\xff\"}", false},
		{"{\"a\":\"\xc3\"}", false},
		{"{\"a\":\"\xed\xa0\x80\"}", false}, // a surrogate encoded in UTF-8
		{`{"a":"\ud800"}`, false},
		{`{"a":"\uD800x"}`, false},
		{`{"a":"\ud800\u0041"}`, false},
		{`{"a":"\udc00"}`, false},
		{`{"\udfff":1}`, false},
		{`["\ud800\udc00\udc00"]`, false},
		{`{"a":"\ud800`, false},
	}
	for _, c := range cases {
		err := schema.CheckText([]byte(c.text))
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok %v", c.text, err, c.ok)
		}
		if err != nil && !errors.Is(err, schema.ErrNotText) {
			t.Errorf("%q: %v does not wrap ErrNotText", c.text, err)
		}
		if !c.ok && c.text[len(c.text)-1] != '0' && !json.Valid([]byte(c.text)) {
			t.Errorf("%q: the grammar refuses it already; the case tests nothing", c.text)
		}
	}
}

func BenchmarkCheckText(b *testing.B) {
	data := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"h\u00e9llo wörld","n":[1,2,3]}}}`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := schema.CheckText(data); err != nil {
			b.Fatal(err)
		}
	}
}
