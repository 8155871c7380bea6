package gateway_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
)

// usage is what a burst of hostile clients must give back: goroutines,
// open files and live heap.
type usage struct {
	goroutines, fds int
	heap            uint64
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %.1f MiB heap", u.goroutines, u.fds, float64(u.heap)/(1<<20))
}

// measure collects garbage and reads the process's usage; fds is -1
// where /proc/self/fd is missing.
func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	return usage{goroutines: runtime.NumGoroutine(), fds: fds, heap: ms.HeapAlloc}
}

// Tolerances over the baseline: a few goroutines and files the runtime or
// the HTTP client may start, and heap the caches may grow by (a burst
// that kept its bodies would keep several MaxBody of them).
const (
	slackGoroutines = 5
	slackFDs        = 4
	slackHeap       = 4 << 20
)

// settles polls until usage is back within the tolerances of base,
// failing the test with the last figures after 15s, and returns them.
func settles(t *testing.T, base usage) usage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		u := measure()
		if u.goroutines <= base.goroutines+slackGoroutines && u.fds <= base.fds+slackFDs && u.heap <= base.heap+slackHeap {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage did not return to its baseline (%v): now %v", base, u)
		}
		<-tick.C
	}
}

// hostileCase is one request a conforming client does not send, and the
// answer it must get: HTTP status and, in a JSON body (in every element,
// for a batch's array), a JSON-RPC error of code with id (default null;
// code 0: no JSON body to check).
type hostileCase struct {
	name    string
	method  string // default POST
	url     string // default the MCP endpoint
	body    string
	headers []string
	status  int
	code    int
	id      string
}

// TestHostileRequests sends, over every transport, requests that are not
// JSON text by RFC 8259 (answered 400 with -32700), JSON that is not a
// JSON-RPC request (400 with -32600, or for a batch's element, its slot
// in the answer), and oversize or malformed requests of other kinds, five
// times over; then checks that the gateway serves its sessions as before
// and that goroutines, open files and heap return to what they were.
func TestHostileRequests(t *testing.T) {
	const maxDepth = 16
	tg := newTestGateway(t, gateway.Config{MaxDepth: maxDepth})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	hs03 := tg.initialize(t, "2025-03-26", `{}`)
	sse := openHTTPSSE(t, tg)
	sse.initialize(`{}`)
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	deep := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}}`
	big := callBody(1, "echo", `{"text":"`+strings.Repeat("b", 4<<20)+`"}`, "")
	bad := func(s string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + s + `"}}}`
	}
	st := statelessHeaders("tools/call", "echo")
	stBody := func(s string) string {
		return statelessBody(1, "tools/call", `{"name":"echo","arguments":{"text":"`+s+`"}}`)
	}
	mcp, sseURL := tg.url, tg.base+gateway.SSEPath
	cases := []hostileCase{
		// Not JSON text, in a session (2025-11-25).
		{name: "invalid UTF-8", body: bad("\xff\xfe"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "truncated UTF-8", body: bad("caf\xc3"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "overlong UTF-8", body: bad("\xc0\xaf"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "UTF-8 encoded surrogate", body: bad("\xed\xa0\x80"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "lone high surrogate", body: bad(`\ud800`), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "lone low surrogate in a key", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"\udc00":1}}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "surrogates reversed", body: bad(`\udc00\ud800`), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "leading BOM", body: "\xef\xbb\xbf" + ping, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "trailing garbage", body: ping + " x", headers: hs, status: 400, code: schema.CodeParseError},
		{name: "two messages", body: ping + ping, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "NaN", body: `{"jsonrpc":"2.0","id":NaN,"method":"ping"}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "Infinity", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":-Infinity}}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "leading zero", body: `{"jsonrpc":"2.0","id":01,"method":"ping"}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "trailing dot", body: `{"jsonrpc":"2.0","id":1.,"method":"ping"}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "hex number", body: `{"jsonrpc":"2.0","id":0x1,"method":"ping"}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "raw tab in a string", body: bad("a\tb"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "raw NUL in a string", body: bad("a\x00b"), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "bad escape", body: bad(`\x41`), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "short unicode escape", body: bad(`\u00e`), headers: hs, status: 400, code: schema.CodeParseError},
		{name: "single quotes", body: `{'jsonrpc':'2.0','id':1,'method':'ping'}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "trailing comma", body: `{"jsonrpc":"2.0","id":1,"method":"ping",}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "comment", body: `{"jsonrpc":"2.0","id":1,"method":"ping"/* hi */}`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "unterminated string", body: `{"jsonrpc":"2.0","id":1,"method":"ping`, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "empty body", body: ``, headers: hs, status: 400, code: schema.CodeParseError},
		{name: "only whitespace", body: " \r\n\t", headers: hs, status: 400, code: schema.CodeParseError},
		{name: "vertical tab as space", body: "\v" + ping, headers: hs, status: 400, code: schema.CodeParseError},
		// JSON, but not a JSON-RPC request.
		{name: "top-level number", body: `1`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "top-level string", body: `"ping"`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "top-level null", body: `null`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "top-level true", body: `true`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "method repeated", body: `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "id repeated", body: `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "too deep", body: deep, headers: hs, status: 400, code: schema.CodeInvalidRequest},
		{name: "deep strings", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"` + strings.Repeat("[", 1000) + `"}}`, headers: hs, status: 200},
		{name: "body over MaxBody", body: big, headers: hs, status: 413, code: schema.CodeInvalidRequest},
		{name: "batch outside 2025-03-26", body: "[" + ping + "]", headers: hs, status: 400, code: schema.CodeInvalidRequest},
		// Batches (2025-03-26).
		{name: "batch: empty", body: `[]`, headers: hs03, status: 400, code: schema.CodeInvalidRequest},
		{name: "batch: unterminated", body: "[" + ping + ",", headers: hs03, status: 400, code: schema.CodeParseError},
		{name: "batch: invalid UTF-8", body: "[" + bad("\xff") + "]", headers: hs03, status: 400, code: schema.CodeParseError},
		{name: "batch: lone surrogate", body: "[" + bad(`\ud83d`) + "]", headers: hs03, status: 400, code: schema.CodeParseError},
		{name: "batch: too deep", body: "[" + deep + "]", headers: hs03, status: 400, code: schema.CodeInvalidRequest},
		{name: "batch: scalars", body: `[1,"x",null]`, headers: hs03, status: 200, code: schema.CodeInvalidRequest},
		{name: "batch: repeated member", body: `[{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}]`, headers: hs03, status: 200, code: schema.CodeInvalidRequest},
		{name: "batch: nested batch", body: "[[" + ping + "]]", headers: hs03, status: 200, code: schema.CodeInvalidRequest},
		// GET and DELETE of sessions.
		{name: "GET: unknown session", method: http.MethodGet, headers: []string{"Accept", "text/event-stream", "Mcp-Session-Id", "nope"}, status: 404, code: schema.CodeInvalidRequest},
		{name: "GET: session id of non-ASCII bytes", method: http.MethodGet, headers: []string{"Accept", "text/event-stream", "Mcp-Session-Id", "\xff\xfe"}, status: 404, code: schema.CodeInvalidRequest},
		{name: "GET: no event stream accepted", method: http.MethodGet, headers: append([]string{"Accept", "application/json"}, hs...), status: 406, code: schema.CodeInvalidRequest},
		{name: "DELETE: no session", method: http.MethodDelete, status: 400, code: schema.CodeInvalidRequest},
		{name: "DELETE: unknown session", method: http.MethodDelete, headers: []string{"Mcp-Session-Id", strings.Repeat("f", 4096)}, status: 404, code: schema.CodeInvalidRequest},
		{name: "PATCH", method: http.MethodPatch, body: ping, headers: hs, status: 405, code: schema.CodeInvalidRequest},
		// The stateless revision (2026-07-28).
		{name: "stateless: invalid UTF-8", body: stBody("\xff"), headers: st, status: 400, code: schema.CodeParseError},
		{name: "stateless: lone surrogate", body: stBody(`\udbff`), headers: st, status: 400, code: schema.CodeParseError},
		{name: "stateless: trailing garbage", body: stBody("x") + "]", headers: st, status: 400, code: schema.CodeParseError},
		{name: "stateless: method repeated", body: strings.Replace(stBody("x"), `"method":"tools/call"`, `"method":"tools/call","method":"tools/list"`, 1), headers: st, status: 400, code: schema.CodeInvalidRequest},
		{name: "stateless: batch", body: "[" + stBody("x") + "]", headers: st, status: 400, code: schema.CodeInvalidRequest},
		{name: "stateless: GET", method: http.MethodGet, headers: []string{"Accept", "text/event-stream", "MCP-Protocol-Version", "2026-07-28"}, status: 405, code: schema.CodeInvalidRequest},
		{name: "stateless: Mcp-Name of non-ASCII bytes", body: stBody("x"), headers: []string{"MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "ec\xffho"}, status: 400, code: schema.CodeHeaderMismatch, id: "1"},
		// HTTP+SSE (2024-11-05).
		{name: "messages: invalid UTF-8", url: sse.messages, body: bad("\xff"), status: 400, code: schema.CodeParseError},
		{name: "messages: lone surrogate", url: sse.messages, body: bad(`\ude00`), status: 400, code: schema.CodeParseError},
		{name: "messages: trailing garbage", url: sse.messages, body: ping + "}", status: 400, code: schema.CodeParseError},
		{name: "messages: top-level number", url: sse.messages, body: `7`, status: 400, code: schema.CodeInvalidRequest},
		{name: "messages: too deep", url: sse.messages, body: deep, status: 400, code: schema.CodeInvalidRequest},
		{name: "messages: body over MaxBody", url: sse.messages, body: big, status: 413, code: schema.CodeInvalidRequest},
		{name: "messages: a bad element refuses the batch", url: sse.messages, body: "[" + ping + ",1]", status: 400, code: schema.CodeInvalidRequest},
		{name: "messages: unknown session", url: tg.base + gateway.MessagesPath + "?sessionId=nope", body: ping, status: 404, code: schema.CodeInvalidRequest},
		{name: "sse: no event stream accepted", method: http.MethodGet, url: sseURL, headers: []string{"Accept", "application/json"}, status: 406, code: schema.CodeInvalidRequest},
		{name: "sse: PUT", method: http.MethodPut, url: sseURL, body: ping, status: 405, code: schema.CodeInvalidRequest},
	}
	if len(cases) < 40 {
		t.Fatalf("%d cases", len(cases))
	}
	run := func(t *testing.T, tc hostileCase) {
		method, url := tc.method, tc.url
		if method == "" {
			method = http.MethodPost
		}
		if url == "" {
			url = mcp
		}
		r := tg.do(t, method, url, tc.body, tc.headers...)
		if r.status != tc.status {
			t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
		}
		if tc.code == 0 {
			return
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q: %.300s", ct, r.body)
		}
		msgs := []json.RawMessage{r.body}
		if strings.HasPrefix(string(r.body), "[") {
			if err := json.Unmarshal(r.body, &msgs); err != nil || len(msgs) == 0 {
				t.Fatalf("batch answer %s: %v", r.body, err)
			}
		}
		for _, b := range msgs {
			m := decode(t, b)
			if m.Error == nil || m.Error.Code != tc.code || m.Error.Message == "" || m.Result != nil {
				t.Fatalf("want error %d with a message: %s", tc.code, b)
			}
			if want := cmp.Or(tc.id, "null"); string(m.ID) != want {
				t.Fatalf("id %s, want %s: %s", m.ID, want, b)
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, tc) })
	}
	tg.client.CloseIdleConnections()
	base := measure()
	t.Logf("baseline after one round: %v", base)
	for range 4 {
		for _, tc := range cases {
			run(t, tc)
		}
	}
	tg.client.CloseIdleConnections()
	t.Logf("after %d more requests: %v", 4*len(cases), settles(t, base))

	// The sessions serve as before.
	if m := wantResult(t, tg.post(t, callBody(2, "echo", `{"text":"still here"}`, ""), hs...)); toolText(t, m.Result) != "still here" {
		t.Errorf("session after the burst: %s", m.Result)
	}
	if r := tg.post(t, "["+callBody(3, "echo", `{"text":"a"}`, "")+"]", hs03...); r.status != 200 || !strings.Contains(string(r.body), `"text":"a"`) {
		t.Errorf("batch after the burst: %d %s", r.status, r.body)
	}
	sse.send(callBody(4, "echo", `{"text":"sse"}`, ""))
	if m := sse.next("the echo after the burst"); string(m.ID) != "4" || toolText(t, m.Result) != "sse" {
		t.Errorf("HTTP+SSE after the burst: %v", m)
	}
}
