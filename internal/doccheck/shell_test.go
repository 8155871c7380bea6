package doccheck

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestCommandsIn(t *testing.T) {
	block := CodeBlock{Lang: "sh", Line: 10, Lines: strings.Split(strings.Join([]string{
		"go run ./cmd/mcpstream dev   # starts everything", // 11
		"# a comment line",                     // 12
		"",                                     // 13
		"curl -s -H 'X: a # not a comment' \\", // 14
		"  -d '{\"a\":1}' \\",                  // 15
		"  http://127.0.0.1:8080/mcp          # note the header, then:", // 16
		"make build && ./bin/mcpstream worker --nats URL; echo done",    // 17
		"echo \"a;b && c\" | grep x || true",                            // 18
		"cmd 2>&1 >/dev/null &",                                         // 19
		"echo 'multi",                                                   // 20
		"line' end",                                                     // 21
		"echo url#fragment \"#quoted\" \\# escaped",                     // 22
	}, "\n"), "\n")}
	var got []string
	for _, c := range CommandsIn("F.md", block) {
		if c.File != "F.md" {
			t.Errorf("file %q", c.File)
		}
		got = append(got, strings.Join([]string{strconv.Itoa(c.Line), strings.Join(strings.Fields(c.Text), " ")}, " "))
	}
	want := []string{
		"11 go run ./cmd/mcpstream dev",
		`14 curl -s -H 'X: a # not a comment' -d '{"a":1}' http://127.0.0.1:8080/mcp`,
		"17 make build",
		"17 ./bin/mcpstream worker --nats URL",
		"17 echo done",
		`18 echo "a;b && c"`,
		"18 grep x",
		"18 true",
		"19 cmd 2>&1 >/dev/null",
		"20 echo 'multi line' end",
		`22 echo url#fragment "#quoted" \# escaped`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands\n got %q\nwant %q", got, want)
	}
}

func TestCommandsInConsole(t *testing.T) {
	block := CodeBlock{Lang: "console", Line: 1, Lines: []string{"$ mcpstream dev", "mcpstream: JetStream store in /tmp/x", "$ make test"}}
	var got []string
	for _, c := range CommandsIn("F.md", block) {
		got = append(got, strconv.Itoa(c.Line)+" "+c.Text)
	}
	if want := []string{"2 mcpstream dev", "4 make test"}; !reflect.DeepEqual(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
}

func TestWords(t *testing.T) {
	vars := func(name string) string { return "<" + name + ">" }
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`mcpstream dev --addr 127.0.0.1:8080`, []string{"mcpstream", "dev", "--addr", "127.0.0.1:8080"}},
		{`curl -H 'A: b c' -d "{\"x\":\"$SID\"}"`, []string{"curl", "-H", "A: b c", "-d", `{"x":"<SID>"}`}},
		{`echo ${HOME}/x $1 $ "it's" 'say "hi"' a\ b`, []string{"echo", "<HOME>/x", "<1>", "$", "it's", `say "hi"`, "a b"}},
		{`echo "$(cat f)" x=$(date)`, []string{"echo", "<$(cat f)>", "x=<$(date)>"}},
		{`GOFLAGS=-race go run ./cmd/mcpstream dev`, []string{"GOFLAGS=-race", "go", "run", "./cmd/mcpstream", "dev"}},
		{`a''b ""`, []string{"ab", ""}},
	} {
		got, err := Command{Text: tc.in}.Words(vars)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Words(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`echo 'open`, `echo "open`, `echo ${open`, `echo $(open`} {
		if _, err := (Command{Text: bad}).Words(vars); err == nil {
			t.Errorf("Words(%s): no error", bad)
		}
	}
}

func TestMCPStreamArgs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		ok   bool
	}{
		{[]string{"go", "run", "./cmd/mcpstream", "dev", "--addr", "x"}, []string{"dev", "--addr", "x"}, true},
		{[]string{"go", "run", "-race", "./cmd/mcpstream/", "gateway"}, []string{"gateway"}, true},
		{[]string{"go", "run", "github.com/mcpstream/mcpstream/cmd/mcpstream@latest", "stdio"}, []string{"stdio"}, true},
		{[]string{"mcpstream", "worker"}, []string{"worker"}, true},
		{[]string{"./bin/mcpstream", "bench", "--url", "U"}, []string{"bench", "--url", "U"}, true},
		{[]string{"GOGC=200", "/usr/local/bin/mcpstream"}, []string{}, true},
		{[]string{"go", "run", "./bench/compare"}, nil, false},
		{[]string{"make", "dev"}, nil, false},
		{[]string{"mcpstream-other", "dev"}, nil, false},
	} {
		got, ok := MCPStreamArgs(tc.in)
		if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("MCPStreamArgs(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMakeTargets(t *testing.T) {
	mk := "GO ?= go\nPKGS := ./...\n.PHONY: test vet\n\ntest: vet\n\t$(GO) test ./...\nvet:\n\techo a:b\nbuild bin/x: dep\nall:: one\n%.o: %.c\n$(OUT): x\nX ::= y\n"
	got := MakeTargets([]byte(mk))
	want := map[string]bool{"test": true, "vet": true, "build": true, "bin/x": true, "all": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
}

func TestPlaceholders(t *testing.T) {
	for _, p := range []string{"URL", "HOST:PORT", "N", "A,B,C", "PID", "DIR", "<dir>", "...", "$SID", "http://$HOST/mcp", "NATS_URL"} {
		if !isPlaceholder(p) {
			t.Errorf("%q is not a placeholder", p)
		}
	}
	for _, v := range []string{"127.0.0.1:8080", "demo", "10s", "64", "nats://127.0.0.1:4222", "X-User", "echo"} {
		if isPlaceholder(v) {
			t.Errorf("%q is a placeholder", v)
		}
	}
}

func TestFlagLine(t *testing.T) {
	for _, tc := range []struct{ line, name, typ string }{
		{"  -addr string", "addr", "string"},
		{"  -no-progress", "no-progress", ""},
		{"  -x\tone-letter bool", "x", ""},
		{"  -n int\tone-letter int", "n", "int"},
		{"    \tHTTP listen address (default \"127.0.0.1:8080\")", "", ""},
	} {
		m := flagLine.FindStringSubmatch(tc.line)
		if tc.name == "" {
			if m != nil {
				t.Errorf("%q matched as flag %q", tc.line, m[1])
			}
			continue
		}
		if m == nil || m[1] != tc.name || m[2] != tc.typ {
			t.Errorf("%q: %q, want %s %s", tc.line, m, tc.name, tc.typ)
		}
	}
}
