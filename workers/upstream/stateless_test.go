package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// awaitUp waits until a connection of p is up, failing the test once p
// has stopped for good, or after 10s.
func awaitUp(t *testing.T, p *pool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		fatal, changed := p.fatal, p.changed
		up := false
		for _, k := range p.conns {
			up = up || (k != nil && k.err() == nil)
		}
		p.mu.Unlock()
		switch {
		case fatal != nil:
			t.Fatalf("the pool stopped for good: %v", fatal)
		case up:
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no connection of the pool up within 10s (last start: %v)", p.state().lastErr)
		}
	}
}

// TestStatelessDiscoverTimeoutNotForGood: an upstream that speaks
// 2026-07-28 (the go-sdk over stateless Streamable HTTP) does not answer
// the first server/discover within InitTimeout, as one slow to start, and
// answers the ones after (once the test lets it). The stateless client's
// call in flight is answered through a session connection, not held
// while the pool starts again, and the stateless pool starts again with
// backoff: a later call of a stateless client reaches the upstream with
// the revision's _meta. Before, no answer in time stopped the stateless
// pool for good, as a server that does not speak the revision does.
func TestStatelessDiscoverTimeoutNotForGood(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "slow-start", Version: "1"}, nil)
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
	})
	var discovers atomic.Int32
	release := make(chan struct{}) // closed: server/discover is answered
	calls := make(chan bool, 16)   // per tools/call: it carried the stateless revision's _meta
	url := serveHTTP(t, s, true, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Method string `json:"method"`
				Params struct {
					Meta map[string]json.RawMessage `json:"_meta"`
				} `json:"params"`
			}
			_ = json.Unmarshal(body, &m)
			switch m.Method {
			case schema.MethodServerDiscover:
				if discovers.Add(1) == 1 {
					<-r.Context().Done() // no answer: the worker gives up at InitTimeout
					return
				}
				select { // the next start's, once the test says
				case <-release:
				case <-r.Context().Done():
					return
				}
			case schema.MethodToolsCall:
				calls <- m.Params.Meta["io.modelcontextprotocol/protocolVersion"] != nil
			}
			next.ServeHTTP(w, r)
		})
	})

	h := echoHost(t, url, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echo := func(key string) (stateless bool) {
		t.Helper()
		call := &workers.Call{Key: key, Revision: schema.Revision20260728}
		res, err := h.handle(ctx, call, workers.RawRequest{Method: schema.MethodToolsCall, Name: "echo", Params: json.RawMessage(`{"text":"hi"}`)})
		if err != nil {
			t.Fatalf("call %s: %v", key, err)
		}
		var r struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(res, &r); err != nil || len(r.Content) != 1 || r.Content[0].Text != "hi" {
			t.Fatalf("call %s: result %s: %v", key, res, err)
		}
		return <-calls
	}

	// The first call starts the stateless pool, whose discovery goes
	// unanswered; the call is answered all the same, through a session
	// connection, while the pool is started again (its discovery held
	// until the call is answered).
	if echo("k1") {
		t.Fatal("the first call reached the upstream with the stateless revision's _meta before discovery was answered")
	}
	if n := discovers.Load(); n < 1 {
		t.Fatalf("%d server/discover requests, want the first stateless call to start discovery", n)
	}
	close(release)
	awaitUp(t, h.spool)
	if n := discovers.Load(); n < 2 {
		t.Fatalf("the stateless pool is up after %d server/discover requests, want a second after the first went unanswered", n)
	}
	if !echo("k2") {
		t.Fatal("a stateless client's call after discovery succeeded reached the upstream without the revision's _meta (a session connection)")
	}
}

// TestStatelessDiscoverRefusedStopsPool: an upstream that answers
// server/discover, but not with 2026-07-28 (the go-sdk over Streamable
// HTTP with sessions), stops the stateless pool for good, unlike one that
// does not answer in time; the stateless client's call is answered
// through a session connection.
func TestStatelessDiscoverRefusedStopsPool(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "sessions", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hi"}}}, nil, nil
	})
	url := serveHTTP(t, s, false, nil)
	h := echoHost(t, url, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := &workers.Call{Key: "k1", Revision: schema.Revision20260728}
	if _, err := h.handle(ctx, call, workers.RawRequest{Method: schema.MethodToolsCall, Name: "echo", Params: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("a stateless client's call: %v", err)
	}
	h.spool.mu.Lock()
	fatal := h.spool.fatal
	h.spool.mu.Unlock()
	if !errors.Is(fatal, errNoStateless) {
		t.Fatalf("the stateless pool after the upstream's answer: %v, want it stopped for good", fatal)
	}
}

// echoHost is a host of the Streamable HTTP upstream at url, one
// connection a pool restarted at once, whose tool echo is the upstream's,
// its pools running until the test ends.
func echoHost(t *testing.T, url string, initTimeout time.Duration) *Host {
	t.Helper()
	h, err := New("g", Config{URL: url, Transport: TransportStreamable, Pool: 1, InitTimeout: initTimeout,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.names.Store(&nameMap{tools: map[string]toolInfo{"echo": {upstream: "echo"}}})
	runPools(t, h)
	return h
}
