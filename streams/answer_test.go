package streams_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

func TestClientRequestIDs(t *testing.T) {
	id, subject := streams.NewClientRequest()
	id2, subject2 := streams.NewClientRequest()
	if id == id2 || subject == subject2 {
		t.Fatalf("two requests got the same id %s or subject %s", id, subject)
	}
	raw, _ := json.Marshal(id)
	got, ok := streams.AnswerSubject(raw)
	if !ok || got != subject {
		t.Fatalf("AnswerSubject(%s) = %q, %v; want %q", raw, got, ok, subject)
	}
	if !strings.HasPrefix(subject, "mcp.answer.") || strings.ContainsAny(subject[len("mcp.answer."):], ".*> ") {
		t.Errorf("subject %q is not one token under mcp.answer", subject)
	}
	tok := strings.TrimPrefix(id, "mcps-")
	for _, bad := range []string{
		`1`, `null`, `"` + id, `"mcps-"`, `"mcpx-` + tok + `"`, `"mcps-` + strings.ToUpper(tok) + `"`,
		`"mcps-` + tok[:31] + `*"`, `"mcps-` + tok[:31] + `."`, `"mcps-` + tok + `0"`, `["mcps-` + tok + `"]`,
	} {
		if s, ok := streams.AnswerSubject(schema.ID(bad)); ok {
			t.Errorf("AnswerSubject(%s) = %q, want not ours", bad, s)
		}
	}
}

// FuzzAnswerSubject feeds AnswerSubject any id: it must not panic, and an
// id it accepts names one token under mcp.answer.
func FuzzAnswerSubject(f *testing.F) {
	id, _ := streams.NewClientRequest()
	raw, _ := json.Marshal(id)
	for _, seed := range []string{string(raw), `"mcps-00000000000000000000000000000000"`, `1`, `null`, `"mcps-"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		subject, ok := streams.AnswerSubject(schema.ID(b))
		if ok && (len(subject) != len("mcp.answer.")+32 || strings.ContainsAny(subject[len("mcp.answer."):], ".*> ")) {
			t.Fatalf("AnswerSubject(%s) = %q", b, subject)
		}
	})
}
