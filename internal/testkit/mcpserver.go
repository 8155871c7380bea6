package testkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// SessionServer is a Streamable HTTP MCP server on loopback (the official
// SDK's handler, with one tool, echo, answering its argument text) whose
// sessions can be forgotten, as a server that restarts forgets them.
type SessionServer struct {
	// URL is the endpoint.
	URL string

	srv     *mcp.Server
	handler atomic.Pointer[mcp.StreamableHTTPHandler]
	// initialized gets a value for each session whose handshake ended.
	initialized chan struct{}
}

// StartSessionServer starts a SessionServer for the rest of the test.
func StartSessionServer(t testing.TB) *SessionServer {
	t.Helper()
	s := &SessionServer{initialized: make(chan struct{}, 64)}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: "forgetful", Version: "1"}, &mcp.ServerOptions{
		InitializedHandler: func(context.Context, *mcp.InitializedRequest) {
			select {
			case s.initialized <- struct{}{}:
			default:
			}
		},
	})
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s.srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
	})
	s.Forget()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handler.Load().ServeHTTP(w, r)
	}))
	s.URL = hs.URL
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		for ss := range s.srv.Sessions() {
			_ = ss.Close()
		}
	})
	return s
}

// Forget makes the server forget every session so far: a request naming
// one is answered HTTP 404, as by a server restarted.
func (s *SessionServer) Forget() {
	s.handler.Store(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.srv }, nil))
}

// AwaitInitialized waits for the next session's handshake to end (its
// notifications/initialized taken), failing the test after 10s: a client
// posts it apart from its calls, and forgetting the session before it
// arrives would lose the session earlier than the test means.
func (s *SessionServer) AwaitInitialized(t testing.TB) {
	t.Helper()
	select {
	case <-s.initialized:
	case <-time.After(10 * time.Second):
		t.Fatal("no session finished its handshake (notifications/initialized) within 10s")
	}
}
