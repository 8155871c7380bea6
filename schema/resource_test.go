package schema_test

import (
	"fmt"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestMatchTemplate(t *testing.T) {
	for _, c := range []struct {
		tmpl, uri string
		want      string // fmt of vars, or "no"
	}{
		{"test://template/{id}/data", "test://template/123/data", "map[id:123]"},
		{"test://template/{id}/data", "test://template/123/other", "no"},
		{"test://template/{id}/data", "test://template//data", "no"},
		{"test://template/{id}/data", "test://template/1/2/data", "no"},
		{"file:///{dir}/{name}", "file:///etc/hosts", "map[dir:etc name:hosts]"},
		{"file:///{dir}/{name}", "file:///etc/", "no"},
		{"users/{id}", "users/42", "map[id:42]"},
		{"users/{id}", "users/42/x", "no"},
		{"exact://thing", "exact://thing", "map[]"},
		{"exact://thing", "exact://thing2", "no"},
		{"bad/{id", "bad/1", "no"},
	} {
		vars, ok := schema.MatchTemplate(c.tmpl, c.uri)
		got := "no"
		if ok {
			got = fmt.Sprint(vars)
		}
		if got != c.want {
			t.Errorf("MatchTemplate(%q, %q) = %s, want %s", c.tmpl, c.uri, got, c.want)
		}
	}
}
