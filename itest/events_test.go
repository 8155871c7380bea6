package itest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

func openStream(t *testing.T, ctx context.Context, url, sid string, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// awaitStreams waits until the gateway counts n open event streams.
func awaitStreams(t *testing.T, gw *gateway.Gateway, n int64) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d open streams (have %d)", n, gw.OpenEventStreams()), 5*time.Second, func() bool { return gw.OpenEventStreams() == n })
}

// ended reports whether the stream's body reaches EOF within the timeout.
func ended(body io.Reader, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, body); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// TestEventStreamLifecycle: a GET event stream is held open with keep-alive
// comments; one per session on a gateway (a second replaces the first,
// which the gateway ends); a client that goes frees the slot at once;
// deleting the session or draining the gateway ends it.
func TestEventStreamLifecycle(t *testing.T) {
	s := newStack(t, gateway.Config{KeepAlive: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sid := initSession(t, s.url)

	first := openStream(t, ctx, s.url, sid)
	if first.StatusCode != 200 || first.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET: status %d, type %q", first.StatusCode, first.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(first.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ": keep-alive") {
		t.Fatalf("first line %q, %v; want a keep-alive comment", line, err)
	}
	awaitStreams(t, s.gw, 1)
	second := openStream(t, ctx, s.url, sid)
	if second.StatusCode != http.StatusOK {
		t.Fatalf("second GET: status %d, want 200", second.StatusCode)
	}
	if !ended(first.Body, 5*time.Second) {
		t.Fatal("the first stream still open after a second replaced it")
	}
	first.Body.Close()
	awaitStreams(t, s.gw, 1)

	// The client goes: the slot is free again at once.
	second.Body.Close()
	awaitStreams(t, s.gw, 0)
	again := openStream(t, ctx, s.url, sid)
	if again.StatusCode != 200 {
		t.Fatalf("GET after the client left: status %d", again.StatusCode)
	}
	awaitStreams(t, s.gw, 1)

	// Deleting the session ends its stream.
	req, _ := http.NewRequest(http.MethodDelete, s.url, nil)
	if r := do(t, req, "Mcp-Session-Id", sid); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: status %d", r.status)
	}
	if !ended(again.Body, 5*time.Second) {
		t.Fatal("stream still open after its session was deleted")
	}
	awaitStreams(t, s.gw, 0)

	// Draining the gateway ends every stream.
	other := openStream(t, ctx, s.url, initSession(t, s.url))
	awaitStreams(t, s.gw, 1)
	s.gw.Drain()
	if !ended(other.Body, 5*time.Second) {
		t.Fatal("stream still open after the gateway drained")
	}
}
