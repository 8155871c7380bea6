package schema_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// TestSensitivePaths: the keyword is found under properties, items,
// additionalProperties and the combinators, and nowhere else.
func TestSensitivePaths(t *testing.T) {
	in := json.RawMessage(`{"type":"object","properties":{
		"user":{"type":"string"},
		"password":{"type":"string","x-mcpstream-sensitive":true},
		"auth":{"type":"object","properties":{"token":{"x-mcpstream-sensitive":true},"scheme":{}}},
		"keys":{"type":"array","items":{"type":"object","properties":{"secret":{"x-mcpstream-sensitive":true}}}},
		"env":{"type":"object","additionalProperties":{"x-mcpstream-sensitive":true}},
		"either":{"anyOf":[{"properties":{"pin":{"x-mcpstream-sensitive":true}}}]},
		"off":{"x-mcpstream-sensitive":false}
	}}`)
	var got []string
	for _, p := range schema.SensitivePaths(in) {
		got = append(got, strings.Join(p, "/"))
	}
	slices.Sort(got)
	want := []string{"auth/token", "either/pin", "env/*", "keys/*/secret", "password"}
	if !slices.Equal(got, want) {
		t.Errorf("sensitive paths %v, want %v", got, want)
	}
	for _, bad := range []string{``, `[]`, `{"x-mcpstream-sensitive":true}`, `{"properties":3}`} {
		if p := schema.SensitivePaths(json.RawMessage(bad)); len(p) != 0 {
			t.Errorf("%s: %v", bad, p)
		}
	}
}
