package gateway_test

// The gateway's handler tests run against real parts: an embedded JetStream
// on disk, a small test worker group (internal/testkit, on the wire
// contract alone: gateway and workers never import each other) and real
// HTTP on loopback. They use only the gateway's exported API, so that they
// hold across rewrites of its internals.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// waitFor bounds every wait of these tests for an event.
const waitFor = 20 * time.Second

// testGateway is one gateway under test: its MCP endpoint, the HTTP+SSE
// transport (GET /sse, POST /messages) and the test worker serving the
// tools, prompt and resource below.
type testGateway struct {
	url  string // the MCP endpoint (Streamable HTTP)
	base string // the server's root, for /sse
	g    *gateway.Gateway
	w    *testkit.Worker
	// emb is the embedded server, for more connections; js a JetStream
	// context on it, for looking into its streams and buckets.
	emb    *streams.Embedded
	js     jetstream.JetStream
	client *http.Client
	// held receives each call of the "hold" tool as it reaches the
	// worker; the call ends when the test sends its result on release.
	held chan heldCall
	// holding counts the calls of the hold tool in its handler, and
	// mostHolding the most there have been at once.
	holding, mostHolding atomic.Int32
	// answers receives what came back to the "roots" tool's request to
	// the client.
	answers chan *testkit.Answer
}

// heldCall is a call of the "hold" tool, waiting in the worker.
type heldCall struct {
	call *testkit.Call
	// release ends the call with a result.
	release chan<- any
	// ended receives, when the handler returns, nil if it was released or
	// else the cause of the end of its context.
	ended <-chan error
}

// The test worker's group and definitions.
const (
	testGroup = "gwtest"
	// echoSchema is the echo tool's input schema.
	echoSchema = `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`
)

// testTools are the test worker's tools:
//   - echo answers its text argument as text content;
//   - progress sends notifications/progress against the request's token,
//     then answers "done";
//   - fail answers the JSON-RPC error failError;
//   - hold waits in the worker until the test releases it (testGateway.held);
//   - log sends notifications/message at levels info, then error, then
//     answers "logged";
//   - roots asks the client for roots/list and answers the result as text,
//     or, when the answer is an error, a tool error with its message.
var testTools = []schema.Tool{
	{Name: "echo", Description: "Echoes its text.", InputSchema: json.RawMessage(echoSchema)},
	{Name: "progress", Description: "Reports progress, then answers done."},
	{Name: "fail", Description: "Fails with a JSON-RPC error."},
	{Name: "hold", Description: "Waits until the test releases it."},
	{Name: "log", Description: "Logs at info and error."},
	{Name: "roots", Description: "Asks the client for its roots."},
}

// failError is what the fail tool answers.
var failError = &schema.Error{Code: -32050, Message: "failed on purpose", Data: json.RawMessage(`{"reason":"test"}`)}

// newTestGateway starts an embedded JetStream, the test worker and a
// gateway configured by cfg (with a silent logger and two partitions
// unless cfg sets them), and serves the gateway on loopback: the MCP
// endpoint at /mcp, the HTTP+SSE transport at /sse and /messages. This is
// the one place the gateway is mounted. Everything stops at the end of the
// test: the gateway drains, the server closes every connection, then the
// gateway, the worker and NATS stop.
func newTestGateway(t *testing.T, cfg gateway.Config) *testGateway {
	t.Helper()
	emb, _, js := testkit.JetStream(t)
	connect := func() *nats.Conn {
		nc, _ := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return emb.Connect() })
		return nc
	}
	if cfg.Topology.Partitions == 0 {
		cfg.Topology.Partitions = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tg := &testGateway{emb: emb, js: js, held: make(chan heldCall, 16), answers: make(chan *testkit.Answer, 16)}
	tg.w = testkit.StartWorker(t, connect(), testkit.WorkerOptions{
		Group:     testGroup,
		Topology:  cfg.Topology,
		Tools:     testTools,
		Prompts:   []schema.Prompt{{Name: "greet", Arguments: []schema.PromptArgument{{Name: "name", Required: true}}}},
		Resources: []schema.Resource{{URI: "test://readme", Name: "readme", MimeType: "text/plain"}},
		Handle:    tg.handle,
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	g, err := gateway.New(ctx, connect(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	tg.g = g
	// The worker registered before the gateway started: its first
	// snapshot has the tools.
	if g.Registry().Tool("echo") == nil {
		t.Fatal("the gateway's first registry snapshot lacks the worker's tools")
	}

	mux := http.NewServeMux()
	g.Mount(mux)
	// The server is configured as cmd/mcpstream's: every test runs under
	// the deadlines and the connection cap of hostile.go.
	srv := httptest.NewUnstartedServer(mux)
	g.ConfigureServer(srv.Config)
	srv.Listener = g.LimitListener(srv.Listener)
	srv.Start()
	tg.base, tg.url = srv.URL, srv.URL+gateway.MCPPath
	tg.client = &http.Client{Transport: &http.Transport{}, Timeout: 2 * waitFor}
	t.Cleanup(func() {
		g.Drain() // ends the event streams, which the server does not track
		srv.CloseClientConnections()
		srv.Close()
		tg.client.CloseIdleConnections()
	})
	return tg
}

// another starts a second gateway on tg's NATS server and worker group,
// served on loopback like tg's, and returns its server's root: what a
// load balancer in front of both would send a client's requests to.
func (tg *testGateway) another(t *testing.T) string {
	t.Helper()
	nc, err := tg.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	g, err := gateway.New(ctx, nc, gateway.Config{Topology: streams.Topology{Partitions: 2}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	mux := http.NewServeMux()
	g.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		g.Drain()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

// handle is the test worker's handler (see testTools).
func (tg *testGateway) handle(ctx context.Context, c *testkit.Call) (any, error) {
	text := func(s string) any {
		return map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}
	}
	switch c.Env.Method {
	case schema.MethodPromptsGet:
		var a struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(c.Args, &a)
		return map[string]any{"messages": []any{map[string]any{"role": "user",
			"content": map[string]any{"type": "text", "text": "Hello, " + a.Name}}}}, nil
	case schema.MethodResourcesRead:
		return map[string]any{"contents": []any{map[string]any{"uri": c.Env.Name, "mimeType": "text/plain", "text": "read me"}}}, nil
	}
	switch c.Env.Name {
	case "echo":
		var a struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(c.Args, &a)
		return text(a.Text), nil
	case "progress":
		err := c.Notify(schema.NotificationProgress, map[string]any{"progressToken": c.ProgressToken(),
			"progress": 1, "total": 2, "message": "halfway"})
		return text("done"), err
	case "fail":
		return nil, failError
	case "log":
		for _, level := range []string{"info", "error"} {
			if err := c.Notify(schema.NotificationMessage, map[string]any{"level": level, "data": level + " line"}); err != nil {
				return nil, err
			}
		}
		return text("logged"), nil
	case "hold":
		n := tg.holding.Add(1)
		defer tg.holding.Add(-1) // before the reply goes
		for most := tg.mostHolding.Load(); n > most && !tg.mostHolding.CompareAndSwap(most, n); most = tg.mostHolding.Load() {
		}
		release, ended := make(chan any, 1), make(chan error, 1)
		select {
		case tg.held <- heldCall{call: c, release: release, ended: ended}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case res := <-release:
			ended <- nil
			return res, nil
		case <-ctx.Done():
			ended <- context.Cause(ctx)
			return nil, ctx.Err()
		}
	case "roots":
		a, err := c.Ask(ctx, schema.MethodRootsList, struct{}{})
		if err != nil {
			return nil, err
		}
		select {
		case tg.answers <- a:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if a.Message.Error != nil {
			return map[string]any{"isError": true, "content": []any{map[string]any{"type": "text", "text": a.Message.Error.Message}}}, nil
		}
		return text(string(a.Message.Result)), nil
	}
	return nil, schema.Errorf(schema.CodeInvalidParams, "the test worker has no %s %s", c.Env.Method, c.Env.Name)
}

// awaitHeld returns the next call of the hold tool to reach the worker.
func (tg *testGateway) awaitHeld(t *testing.T) heldCall {
	t.Helper()
	return await(t, tg.held, "a call of the hold tool at the worker")
}

// await receives from ch, failing the test after waitFor.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("waited %s for %s", waitFor, what)
	}
	var zero T
	return zero
}

// response is an HTTP response, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
	close  bool // the server closes the connection after it
}

// newRequest builds a request with headers: pairs of name and value,
// where an empty value deletes the header. POSTs carry the headers a
// conforming client sends (Content-Type: application/json, Accept:
// application/json, text/event-stream) unless headers change them.
func newRequest(ctx context.Context, method, url, body string, headers ...string) (*http.Request, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return req, nil
}

// try sends a request (see newRequest) and reads the whole response.
func (tg *testGateway) try(ctx context.Context, method, url, body string, headers ...string) (response, error) {
	req, err := newRequest(ctx, method, url, body, headers...)
	if err != nil {
		return response{}, err
	}
	resp, err := tg.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading the body: %w", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}, nil
}

// do sends a request to url (see newRequest) and reads the whole
// response, failing the test if it cannot.
func (tg *testGateway) do(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	r, err := tg.try(context.Background(), method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// postAsync posts body to the MCP endpoint in a goroutine, within ctx,
// and returns its response on a channel; a request that fails comes as
// status 0 with the error as its body.
func (tg *testGateway) postAsync(ctx context.Context, body string, headers ...string) <-chan response {
	ch := make(chan response, 1)
	go func() {
		r, err := tg.try(ctx, http.MethodPost, tg.url, body, headers...)
		if err != nil {
			r = response{body: []byte(err.Error())}
		}
		ch <- r
	}()
	return ch
}

// post sends body to the MCP endpoint (see do).
func (tg *testGateway) post(t *testing.T, body string, headers ...string) response {
	t.Helper()
	return tg.do(t, http.MethodPost, tg.url, body, headers...)
}

// open sends a request and returns the response with its body unread
// (closed at the end of the test), for streams; ctx ends the request.
func (tg *testGateway) open(t *testing.T, ctx context.Context, method, url, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := newRequest(ctx, method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tg.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// initialize opens a session of revision rev for a client declaring
// capabilities (a JSON object) and returns the headers its requests
// carry: Mcp-Session-Id and MCP-Protocol-Version.
func (tg *testGateway) initialize(t *testing.T, rev, capabilities string) []string {
	t.Helper()
	r := tg.post(t, initializeBody(1, rev, capabilities))
	m := wantResult(t, r)
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil || res.ProtocolVersion != rev {
		t.Fatalf("initialize %s: negotiated %s (%v)", rev, m.Result, err)
	}
	sid := r.header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	if r := tg.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id", sid, "MCP-Protocol-Version", rev); r.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", r.status, r.body)
	}
	return []string{"Mcp-Session-Id", sid, "MCP-Protocol-Version", rev}
}

// initializeBody is an initialize request asking for rev.
func initializeBody(id int, rev, capabilities string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"initialize","params":{"protocolVersion":%q,"capabilities":%s,"clientInfo":{"name":"gateway-test","version":"1"}}}`,
		id, rev, capabilities)
}

// callBody is a tools/call request of tool with arguments (a JSON object)
// and, if token is not empty, a progress token.
func callBody(id int, tool, arguments, token string) string {
	meta := ""
	if token != "" {
		meta = fmt.Sprintf(`,"_meta":{"progressToken":%q}`, token)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s%s}}`, id, tool, arguments, meta)
}

// rpcMessage is a JSON-RPC message as the gateway sent it.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *schema.Error   `json:"error"`
}

// String returns m as JSON, for failure messages.
func (m rpcMessage) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// decode parses one JSON-RPC message, failing the test if it is not one.
func decode(t *testing.T, b []byte) rpcMessage {
	t.Helper()
	var m rpcMessage
	if err := json.Unmarshal(b, &m); err != nil || m.JSONRPC != "2.0" {
		t.Fatalf("not a JSON-RPC message (%v): %s", err, b)
	}
	return m
}

// wantResult checks that r is HTTP 200 with one JSON-RPC result in a JSON
// body, and returns it.
func wantResult(t *testing.T, r response) rpcMessage {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q, want 200 application/json: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	m := decode(t, r.body)
	if m.Error != nil || m.Result == nil {
		t.Fatalf("want a result: %s", r.body)
	}
	return m
}

// wantError checks that r has HTTP status and a JSON body holding one
// JSON-RPC error of code, and returns it.
func wantError(t *testing.T, r response, status, code int) rpcMessage {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q, want %d application/json: %s", r.status, r.header.Get("Content-Type"), status, r.body)
	}
	m := decode(t, r.body)
	if m.Error == nil || m.Error.Code != code || m.Result != nil {
		t.Fatalf("want error %d: %s", code, r.body)
	}
	return m
}

// toolText returns the text of a tool result's only content item.
func toolText(t *testing.T, result json.RawMessage) string {
	t.Helper()
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(result, &res); err != nil || len(res.Content) != 1 || res.Content[0].Type != "text" {
		t.Fatalf("not a tool result with one text item (%v): %s", err, result)
	}
	return res.Content[0].Text
}

// sseEvent is one server-sent event.
type sseEvent struct{ event, id, data string }

// readSSE returns the events of an SSE body on a channel, closed at the
// end of the body. Comments are skipped.
func readSSE(body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if ev.data != "" || ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case field == "event":
				ev.event = value
			case field == "id":
				ev.id = value
			case field == "data":
				if ev.data != "" {
					ev.data += "\n"
				}
				ev.data += value
			}
		}
	}()
	return ch
}

// parseSSE returns the events of a whole SSE body.
func parseSSE(body []byte) []sseEvent {
	var out []sseEvent
	for ev := range readSSE(strings.NewReader(string(body))) {
		out = append(out, ev)
	}
	return out
}

// nextEvent returns the next event of a stream, failing the test if the
// stream ends or nothing comes within waitFor.
func nextEvent(t *testing.T, ch <-chan sseEvent, what string) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return ev
	case <-time.After(waitFor):
		t.Fatalf("%s: nothing within %s", what, waitFor)
	}
	return sseEvent{}
}
