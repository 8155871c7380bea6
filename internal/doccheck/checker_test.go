package doccheck_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/internal/doccheck"
)

// commandsOf returns the commands of a Markdown document's quick start.
func commandsOf(t *testing.T, readme string) []doccheck.Command {
	t.Helper()
	blocks, ok := doccheck.Parse([]byte(readme)).Section("Quick start")
	if !ok {
		t.Fatal("no quick start")
	}
	var cmds []doccheck.Command
	for _, b := range blocks {
		if doccheck.ShellLangs[b.Lang] {
			cmds = append(cmds, doccheck.CommandsIn("README.md", b)...)
		}
	}
	return cmds
}

// TestCheckerReportsBadCommands: against the real binary, a quick start's
// bad flag (of a subcommand's subcommand too), unknown subcommand, bad flag
// value, stray argument, unknown make target and unserved curl path are
// each reported on their line; good commands, placeholders in them
// included, are not.
func TestCheckerReportsBadCommands(t *testing.T) {
	readme := "# X\n## Quick start\n```sh\n" + // 1-3
		"go run ./cmd/mcpstream dev --no-such-flag   # a bad flag\n" + // 4
		"mcpstream rewind --from 1\n" + // 5
		"./bin/mcpstream bench --url URL --sessions N --duration D --rate 100 --no-progress \\\n" + // 6
		"  --json out.json\n" + // 7
		"mcpstream bench --sessions lots\n" + // 8
		"mcpstream stdio --url URL extra\n" + // 9
		"mcpstream gateway --nats=URL --max-body=N --call-timeout 5s -h\n" + // 10
		"mcpstream --help && mcpstream --version\n" + // 11
		"make test build && make nosuch\n" + // 12
		"curl -s http://127.0.0.1:8080/healthz; curl -s http://localhost:8080/api\n" + // 13
		"docker compose up --build\n" + // 14
		"GOGC=200 go run ./cmd/mcpstream worker --nats \"$NATS_URL\" --concurrency $N\n" + // 15
		"go run ./bench/compare --sessions 64 && go test -race ./... && go run ./nowhere --x\n" + // 16
		"mcpstream apikey create --file F --principal P --scope mcp:tools && mcpstream apikey list --file F\n" + // 17
		"mcpstream apikey revoke --file F --principal P --nope\n" + // 18
		"mcpstream apikey rotate --file F\n" + // 19
		"```\n## Next\n```sh\nmcpstream nothing-checked-here\n```\n"
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bench", "compare"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "Makefile"), []byte(".PHONY: test\ntest: vet\n\tgo test ./...\nvet:\nbuild:\n\tgo build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &doccheck.Checker{Root: root, Binary: mcpstream(t), Paths: servedPaths, Env: binaryEnv}
	var got []string
	unchecked := 0
	for _, cmd := range commandsOf(t, readme) {
		problems, checked := c.Check(context.Background(), cmd)
		if !checked {
			unchecked++
		}
		for _, p := range problems {
			got = append(got, p.String())
		}
	}
	want := []string{
		"README.md:4: `go run ./cmd/mcpstream dev --no-such-flag`: mcpstream dev has no flag --no-such-flag",
		"README.md:5: `mcpstream rewind --from 1`: mcpstream has no subcommand \"rewind\": mcpstream rewind -h says mcpstream: unknown command \"rewind\"",
		"README.md:8: `mcpstream bench --sessions lots`: mcpstream bench --sessions lots -h fails: invalid value \"lots\" for flag -sessions: parse error",
		"README.md:9: `mcpstream stdio --url URL extra`: mcpstream stdio --url URL extra -h fails: mcpstream stdio: unexpected arguments: extra -h",
		"README.md:11: `mcpstream --version`: mcpstream --version fails: mcpstream: unknown command \"--version\"",
		"README.md:12: `make nosuch`: the Makefile has no target \"nosuch\"",
		"README.md:13: `curl -s http://localhost:8080/api`: /api is not served by mcpstream (it serves /mcp, /sse, /messages, /healthz)",
		"README.md:16: `go run ./nowhere --x`: no package directory ./nowhere",
		"README.md:18: `mcpstream apikey revoke --file F --principal P --nope`: mcpstream apikey revoke has no flag --nope",
		"README.md:19: `mcpstream apikey rotate --file F`: mcpstream apikey rotate --file F -h fails: mcpstream apikey: unknown subcommand \"rotate\" (have create, revoke, list)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if unchecked != 1 {
		t.Errorf("%d commands unchecked, want 1 (docker)", unchecked)
	}
}

// TestRunCurls: curl commands run for real; the session id of a response
// reaches the next command's $SID, and an HTTP error, a JSON-RPC error, a
// tool error and an error in an event stream are reported.
func TestRunCurls(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/mcp" && strings.Contains(string(body), "initialize"):
			w.Header().Set("Mcp-Session-Id", "s-42")
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		case r.URL.Path == "/mcp" && r.Header.Get("Mcp-Session-Id") == "s-42":
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hi"}]}}`)
		case r.URL.Path == "/mcp":
			http.Error(w, "unknown session "+r.Header.Get("Mcp-Session-Id"), http.StatusNotFound)
		case r.URL.Path == "/rpc-error":
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method not found"}}`)
		case r.URL.Path == "/tool-error":
			fmt.Fprint(w, `[{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"bad"}],"isError":true}}]`)
		case r.URL.Path == "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32000,\"message\":\"busy\"}}\n\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	readme := "## Quick start\n```sh\n" + // 1-2
		"curl -si -d '{\"method\":\"initialize\"}' http://127.0.0.1:8080/mcp   # prints the session id\n" + // 3
		"curl -s -H \"Mcp-Session-Id: $SID\" \\\n  -d '{\"method\":\"tools/call\"}' http://127.0.0.1:8080/mcp\n" + // 4-5
		"curl -s -H \"Mcp-Session-Id: $OTHER\" -d '{}' http://localhost:8080/mcp\n" + // 6
		"curl -s http://127.0.0.1:8080/rpc-error\n" + // 7
		"curl -s http://127.0.0.1:8080/tool-error\n" + // 8
		"curl -sN http://127.0.0.1:8080/sse\n" + // 9
		"echo not curl; curl -fsSL https://get.example.com/install.sh\n" + // 10
		"```\n"
	addr := strings.TrimPrefix(srv.URL, "http://")
	var got []string
	for _, p := range doccheck.RunCurls(context.Background(), curl, addr, t.TempDir(), commandsOf(t, readme)) {
		got = append(got, p.String())
	}
	want := []string{
		"README.md:6: `curl -s -H \"Mcp-Session-Id: $OTHER\" -d '{}' http://localhost:8080/mcp`: HTTP status 404: unknown session x",
		"README.md:7: `curl -s http://127.0.0.1:8080/rpc-error`: JSON-RPC error {\"code\":-32601,\"message\":\"method not found\"}",
		"README.md:8: `curl -s http://127.0.0.1:8080/tool-error`: tool error [{\"type\":\"text\",\"text\":\"bad\"}]",
		"README.md:9: `curl -sN http://127.0.0.1:8080/sse`: JSON-RPC error {\"code\":-32000,\"message\":\"busy\"}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
