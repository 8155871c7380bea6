package upstream

import (
	"slices"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for line, want := range map[string][]string{
		`npx -y @modelcontextprotocol/server-filesystem /data`: {"npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"},
		`python -c 'print("a b")'`:                             {"python", "-c", `print("a b")`},
		`cmd "two words" a\ b "q\"x"`:                          {"cmd", "two words", "a b", `q"x`},
		`  spaced   out  `:                                     {"spaced", "out"},
		`empty "" arg`:                                         {"empty", "", "arg"},
	} {
		got, err := SplitCommand(line)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, bad := range []string{`a 'b`, `a "b`} {
		if _, err := SplitCommand(bad); err == nil {
			t.Errorf("SplitCommand(%q): no error for an unterminated quote", bad)
		}
	}
}

func TestNaming(t *testing.T) {
	taken := map[string]string{"search": "other", "g__fetch": "other2"}
	cases := []struct {
		mode, name, want, holder string
		ok                       bool
	}{
		{PrefixNone, "read", "read", "", true},
		{PrefixNone, "search", "search", "other", false},
		{PrefixAlways, "read", "g__read", "", true},
		{PrefixAlways, "search", "g__search", "", true},
		{PrefixConditional, "read", "read", "", true},
		{PrefixConditional, "search", "g__search", "", true},
		{PrefixConditional, "fetch", "fetch", "", true},
	}
	for _, c := range cases {
		n := naming{mode: c.mode, prefix: "g", sep: "__"}
		name, holder, ok := n.name(c.name, taken)
		if name != c.want || holder != c.holder || ok != c.ok {
			t.Errorf("%s %q: got %q %q %v, want %q %q %v", c.mode, c.name, name, holder, ok, c.want, c.holder, c.ok)
		}
	}
	taken["g__search"] = "third"
	if _, holder, ok := (naming{mode: PrefixConditional, prefix: "g", sep: "__"}).name("search", taken); ok || holder != "third" {
		t.Errorf("conditional with the prefixed name taken too: ok %v holder %q, want refused by third", ok, holder)
	}
	n := naming{mode: PrefixNone, prefix: "g", sep: "__", include: []string{"fs_*", "echo"}, exclude: []string{"fs_write*"}}
	for name, want := range map[string]bool{"fs_read": true, "echo": true, "fs_write_file": false, "other": false} {
		if n.wanted(name) != want {
			t.Errorf("wanted(%q) = %v", name, !want)
		}
	}
	for _, bad := range []naming{{mode: "sometimes", prefix: "g", sep: "_"}, {mode: PrefixNone, prefix: "g", sep: "/"},
		{mode: PrefixNone, prefix: "a b", sep: "_"}, {mode: PrefixNone, prefix: "g", sep: "_", include: []string{"["}}} {
		if bad.check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestChildEnvDropsOwnSettings(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "MCPSTREAM_NATS_PASSWORD=secret", "HOME=/root", "MCPSTREAM_GROUP=g"})
	if !slices.Equal(got, []string{"PATH=/bin", "HOME=/root"}) {
		t.Fatalf("childEnv = %q", got)
	}
}
