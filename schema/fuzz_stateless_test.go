package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// FuzzStatelessRequest feeds the parsers of the stateless revision's
// requests and results (params _meta, header values, completion params) with anything: they must not panic, and what they
// accept must hold together.
func FuzzStatelessRequest(f *testing.F) {
	for _, seed := range []string{
		`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`,
		`{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}`,
		`{"resultType":"input_required","requestState":"s"}`, `{}`, `[]`, `"mcps-00000000000000000000000000000000"`,
		`=?base64?SGVsbG8=?=`, `{"_meta":[]}`, `{"a":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			_, _ = schema.DecodeHeaderValue(string(b))
			return
		}
		if m, ok := schema.ParseRequestMeta(b); ok && m.ClientCapabilities != nil && !json.Valid(m.ClientCapabilities) {
			t.Fatalf("capabilities %q from valid JSON are not JSON", m.ClientCapabilities)
		}
		if p, err := schema.ParseCompleteParams(b); err == nil && p.Target() == "" {
			t.Fatalf("accepted completion params without a target: %s", b)
		}
		if out := schema.AppendCompleteResult(nil, b, &schema.CacheHints{TTLMs: 1, Scope: "public"}, []byte(`{"name":"s","version":"1"}`)); out != nil && !json.Valid(out) {
			t.Fatalf("AppendCompleteResult(%s) = %s, not JSON", b, out)
		}
	})
}
