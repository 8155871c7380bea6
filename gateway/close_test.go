package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestCloseStopsEveryGoroutine: with an event stream of each kind open
// (a session's GET stream, a subscriptions/listen stream, an HTTP+SSE
// stream) and an HTTP+SSE request waiting on a worker that never answers,
// Drain and Close return long before the request's deadline; afterwards
// no goroutine of the gateway is left, and the HTTP+SSE session, which
// ended with its stream, is gone from the session bucket before Close
// returned.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	_, nc, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := New(ctx, nc, Config{CallTimeout: time.Minute, KeepAlive: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			g.Close()
		}
	}()
	mux := http.NewServeMux()
	g.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A tool whose group is alive but pulls nothing: a call to it waits.
	entry, _ := json.Marshal(schema.ToolEntry{Tool: schema.Tool{Name: "hang", InputSchema: json.RawMessage(`{"type":"object"}`)},
		Group: "idle", Version: "1"})
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Put(ctx, streams.ToolKey("hang"), entry); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, streams.RegistrySubject(streams.HeartbeatKey("idle", "i1")), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "tool hang in the snapshot", 10*time.Second, func() bool { return g.Registry().Tool("hang") != nil })

	stream := func(req *http.Request) *bufio.Reader {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d", req.Method, req.URL, resp.StatusCode)
		}
		return bufio.NewReader(resp.Body)
	}
	post := func(url, body string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	// A session's GET stream.
	init := post(srv.URL+MCPPath, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := init.Header.Get(schema.HeaderSessionID)
	if init.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: status %d, session %q", init.StatusCode, sid)
	}
	get, _ := http.NewRequest(http.MethodGet, srv.URL+MCPPath, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set(schema.HeaderSessionID, sid)
	stream(get)

	// A subscriptions/listen stream.
	listen := post(srv.URL+MCPPath, `{"jsonrpc":"2.0","id":2,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		schema.HeaderProtocolVersion, schema.Revision20260728, schema.HeaderMethod, schema.MethodSubscriptionsListen)
	if listen.StatusCode != http.StatusOK {
		t.Fatalf("subscriptions/listen: status %d", listen.StatusCode)
	}

	// An HTTP+SSE stream, and a call on it that waits.
	sseReq, _ := http.NewRequest(http.MethodGet, srv.URL+SSEPath, nil)
	sseReq.Header.Set("Accept", "text/event-stream")
	sse := stream(sseReq)
	var endpoint string
	for endpoint == "" {
		line, err := sse.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the endpoint event: %v", err)
		}
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			endpoint = data
		}
	}
	sseSession := endpoint[strings.Index(endpoint, "sessionId=")+len("sessionId="):]
	if r := post(srv.URL+endpoint, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hang","arguments":{}}}`); r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: status %d", endpoint, r.StatusCode)
	}
	testkit.Eventually(t, "three event streams and one call in flight", 10*time.Second, func() bool {
		return g.OpenEventStreams() == 3 && g.InFlight() == 1
	})

	start := time.Now()
	g.Drain()
	srv.Close()
	g.Close()
	closed = true
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("Drain and Close took %s: they waited for the call's deadline", took)
	}
	// A goroutine Close waited for may still be returning from its last
	// deferred call (runnable, past wg.Done), with no event to await: poll
	// a moment for those to end.
	left := gatewayGoroutines()
	for deadline := time.Now().Add(time.Second); left != "" && time.Now().Before(deadline); left = gatewayGoroutines() {
		time.Sleep(5 * time.Millisecond)
	}
	if left != "" {
		t.Fatalf("goroutines of the gateway left after Close:\n%s", left)
	}
	sessKV, err := js.KeyValue(ctx, streams.SessionBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessKV.Get(ctx, sseSession); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the HTTP+SSE session after Close: %v, want it purged", err)
	}
	if n := g.OpenEventStreams(); n != 0 {
		t.Errorf("%d event streams open after Close", n)
	}
}

// gatewayGoroutines returns the stacks of the goroutines running code of
// this package other than the tests.
func gatewayGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "mcpstream/gateway.") && !strings.Contains(g, "mcpstream/gateway.Test") &&
			!strings.Contains(g, "mcpstream/gateway.gatewayGoroutines") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}
