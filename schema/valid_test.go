package schema_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// FuzzValidJSON: ValidJSON says what encoding/json's Valid says, on every
// input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		nested("[", "]", 10000, ""), nested("[", "]", 10001, ""), nested(`{"a":`, "}", 10001, "1"),
		" \t\r\n1 \t\r\n", "\v1", "1\f", `-`, `-01`, `1.e5`, `1e`, `1e+`, `.5`, `+1`, `[-]`, `{"a" 1}`, `{"a":}`,
		`{,}`, `[,1]`, `{"a":1,}`, `{1:2}`, `"\/\u00ZZ"`, "\"\x1f\"", "\"\x7f\"", `nul`, `falsey`, `[true false]`,
		`{"a":[{"b":{}}],"c":[[],[{}]]}`, `[]]`, `{}}`, `[}`, `{]`, `""""`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := schema.ValidJSON(data), json.Valid(data); got != want {
			t.Fatalf("ValidJSON(%q) = %v, json.Valid %v", data, got, want)
		}
	})
}

// TestValidJSONNesting: the nesting bound is encoding/json's, for arrays
// and objects alike.
func TestValidJSONNesting(t *testing.T) {
	for _, c := range []struct{ open, close, leaf string }{{"[", "]", ""}, {`{"k":`, "}", "0"}, {`[{"k":`, "}]", "0"}} {
		for _, n := range []int{63, 64, 65, 4999, 5000, 5001, 10000, 10001} {
			data := []byte(nested(c.open, c.close, n, c.leaf))
			if got, want := schema.ValidJSON(data), json.Valid(data); got != want {
				t.Errorf("%s x %d: ValidJSON %v, json.Valid %v", c.open, n, got, want)
			}
		}
	}
}

// BenchmarkValidJSON: a tools/call's body, and a larger one, against
// encoding/json's Valid.
func BenchmarkValidJSON(b *testing.B) {
	bodies := map[string][]byte{
		"call":  []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"},"_meta":{"progressToken":"p-17"}}}`),
		"large": []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":` + bigObject(64) + `,"list":[` + strings.Repeat(`1.5e3,"s\u00e9",true,null,`, 32) + `0]}}`),
	}
	for _, name := range []string{"call", "large"} {
		body := bodies[name]
		b.Run(name+"/ValidJSON", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !schema.ValidJSON(body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
