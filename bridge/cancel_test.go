package bridge_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bridge"
)

// statelessMeta is the _meta of a stateless (2026-07-28) client's
// messages.
const statelessMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

// TestStatelessCancelRightAfterRequest: a stateless client's
// notifications/cancelled that follows its request at once closes the
// request's stream (over HTTP, the way to cancel it), however the two
// lines' handling is scheduled, rather than being posted on its own (the
// gateway only acknowledges it) while the request runs on. The request
// is large (a long line, as a tool call with a big argument makes), so
// that it takes the bridge a while to parse: its cancel, short, is read
// and handled meanwhile.
func TestStatelessCancelRightAfterRequest(t *testing.T) {
	tg := startGateway(t, false)
	holdOver := make(chan struct{})
	var cancelPosted atomic.Bool
	tr := &watchedTransport{
		base: tg.transport,
		before: func(r *http.Request) {
			if bytes.Contains(bodyOf(r), []byte(`"notifications/cancelled"`)) {
				cancelPosted.Store(true)
			}
		},
		over: func(r *http.Request) {
			if r.Header.Get("Mcp-Name") == "hold" {
				close(holdOver)
			}
		},
	}
	c := runBridge(t, &bridge.Bridge{URL: tg.url, HTTP: &http.Client{Transport: tr}})
	pad := strings.Repeat(" ", bridge.MaxMessage-1<<10)
	c.send(`{"jsonrpc":"2.0",%s"id":7,"method":"tools/call","params":{"name":"hold","arguments":{},%s}}`, pad, statelessMeta)
	c.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"changed my mind",%s}}`, statelessMeta)

	select {
	case <-holdOver:
	case <-time.After(10 * time.Second):
		t.Fatalf("the request's stream is still open 10s after its cancel (the cancel was posted on its own: %v)", cancelPosted.Load())
	}
	// If the request reached the worker before its stream closed, the
	// gateway cancelled it there.
	select {
	case <-tg.held:
		if err := await(t, tg.ended, "the end of the cancelled call at the worker"); err == nil {
			t.Fatal("the call at the worker ended without being cancelled")
		}
	default:
	}
	if cancelPosted.Load() {
		t.Error("the cancel of a stateless request was posted rather than closing the request's stream")
	}
}

// await receives from ch, failing the test after 10s.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for %s", what)
	}
	var zero T
	return zero
}
