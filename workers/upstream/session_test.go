package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bridge"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestStreamableSessionLost: when a Streamable HTTP upstream forgets the
// connection's session (HTTP 404, as after a restart), the connection
// fails and the pool opens another, with a new session: a call that is
// not idempotent gets the lost-connection error and is not sent again,
// an idempotent one is sent again on the new session and answered, and
// the calls after succeed. Before, every call got -32603 with the stale
// session id, forever.
func TestStreamableSessionLost(t *testing.T) {
	srv := testkit.StartSessionServer(t)
	h, err := New("g", Config{URL: srv.URL, Transport: TransportStreamable, Pool: 1, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	running := make(chan struct{})
	go func() { defer close(running); h.pool.run(runCtx) }()
	defer func() { stop(); <-running }()

	req := workers.RawRequest{Method: schema.MethodToolsCall, Name: "echo"}
	echo := func(key, text string, again bool) (string, error) {
		call := &workers.Call{Key: key}
		params := fixed(fmt.Appendf(nil, `{"name":"echo","arguments":{"text":%q}}`, text))
		res, err := h.send(ctx, h.pool, call, req, params, &relay{call: call, c: ctx}, again)
		if err != nil {
			return "", err
		}
		var r struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(res, &r); err != nil || len(r.Content) != 1 {
			return "", fmt.Errorf("result %s: %v", res, err)
		}
		return r.Content[0].Text, nil
	}
	if got, err := echo("k1", "first", false); err != nil || got != "first" {
		t.Fatalf("first call: %q, %v", got, err)
	}
	srv.AwaitInitialized(t)
	k, err := h.pool.pick(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}

	srv.Forget()
	_, err = echo("k2", "not idempotent", false)
	var rpcErr *schema.Error
	if !errors.As(err, &rpcErr) || !strings.Contains(rpcErr.Message, "connection was lost") || !strings.Contains(rpcErr.Message, "not sent again") {
		t.Errorf("a call not idempotent on the forgotten session: %v, want the lost-connection error", err)
	}
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection whose session the upstream forgot is still up")
	}
	if why := k.err(); !strings.Contains(why.Error(), bridge.ErrSessionLost.Error()) {
		t.Errorf("the connection failed with %v, want it to say the session was lost", why)
	}
	if got, err := echo("k3", "new session", false); err != nil || got != "new session" {
		t.Fatalf("a call after the session was lost: %q, %v", got, err)
	}
	srv.AwaitInitialized(t)

	// (The server answers the forgotten session 404 whatever the call:
	// an answer now comes from a new session.)
	srv.Forget()
	if got, err := echo("k4", "idempotent", true); err != nil || got != "idempotent" {
		t.Fatalf("an idempotent call on a forgotten session, sent again: %q, %v", got, err)
	}
	srv.AwaitInitialized(t) // the third session
}
