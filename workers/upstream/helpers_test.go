package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveHTTP serves s over Streamable HTTP on loopback (statelessly, as
// the SDK needs to speak 2026-07-28 over HTTP, when stateless is set)
// for the rest of the test, through wrap when it is set, and returns the
// endpoint.
func serveHTTP(t *testing.T, s *mcp.Server, stateless bool, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: stateless})
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		for ss := range s.Sessions() {
			_ = ss.Close()
		}
	})
	return hs.URL
}

// runPools runs h's session pool, and lets its stateless pool start on
// the first stateless call (as Run does), until the test ends.
func runPools(t *testing.T, h *Host) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	running := make(chan struct{})
	go func() { defer close(running); h.pool.run(ctx) }()
	h.mu.Lock()
	h.spoolCtx = ctx
	h.mu.Unlock()
	t.Cleanup(func() {
		stop()
		<-running
		h.mu.Lock()
		h.spoolStopped = true
		h.mu.Unlock()
		h.spoolRun.Wait()
	})
}

// progressCounter is a caller that counts the progress notifications
// relayed to it; first is closed at the first.
type progressCounter struct {
	c     context.Context
	first chan struct{}

	mu sync.Mutex
	n  int
}

func (p *progressCounter) progress(json.RawMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n++; p.n == 1 {
		close(p.first)
	}
}

func (p *progressCounter) log(json.RawMessage) {}

func (p *progressCounter) request(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, &rpcError{&jsonrpc.Error{Code: -32601, Message: "not relayed in this test"}}
}

func (p *progressCounter) ctx() context.Context { return p.c }

func (p *progressCounter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
