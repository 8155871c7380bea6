package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
)

// TestOfficialClient runs a whole session of the official MCP Go SDK
// client (revision 2025-11-25, with its standalone GET stream) against
// the gateway: connect, list the worker's tools, call one, receive a
// call's progress notification, let the SDK answer a worker's roots/list
// from its roots, see a worker's JSON-RPC error as the call's error, and
// end the session (DELETE), after which its id is 404.
func TestOfficialClient(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	progress := make(chan *mcp.ProgressNotificationParams, 4)
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params
		},
	})
	client.AddRoots(&mcp.Root{URI: "file:///sdk", Name: "sdk"})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tg.url, HTTPClient: tg.client, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			cs.Close()
		}
	}()
	if v := cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		t.Errorf("negotiated %s", v)
	}

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if want := []string{"echo", "fail", "hold", "log", "progress", "roots"}; !equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}

	text := func(res *mcp.CallToolResult) string {
		t.Helper()
		if len(res.Content) != 1 {
			t.Fatalf("result with %d content items", len(res.Content))
		}
		tc, ok := res.Content[0].(*mcp.TextContent)
		if !ok {
			t.Fatalf("content %T, want text", res.Content[0])
		}
		return tc.Text
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "from the sdk"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(res); got != "from the sdk" || res.IsError {
		t.Errorf("echo: %q (isError %v)", got, res.IsError)
	}

	params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	params.SetProgressToken("sdk-token")
	if res, err = cs.CallTool(ctx, params); err != nil {
		t.Fatal(err)
	}
	if got := text(res); got != "done" {
		t.Errorf("progress: %q", got)
	}
	if p := await(t, progress, "the progress notification"); p.ProgressToken != "sdk-token" || p.Progress != 1 || p.Total != 2 || p.Message != "halfway" {
		t.Errorf("progress notification %+v", p)
	}

	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "roots", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if got := text(res); res.IsError || !strings.Contains(got, `"uri":"file:///sdk"`) {
		t.Errorf("roots: %q (isError %v), want the client's roots", got, res.IsError)
	}
	if a := await(t, tg.answers, "the SDK's answer at the worker"); a.GatewayError || a.Session != cs.ID() {
		t.Errorf("answer at the worker: gateway error %v, session %q, want %q", a.GatewayError, a.Session, cs.ID())
	}

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != int64(failError.Code) || rpcErr.Message != failError.Message {
		t.Errorf("fail: error %v, want JSON-RPC error %d %q", err, failError.Code, failError.Message)
	}

	sid := cs.ID()
	closed = true
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	wantError(t, tg.post(t, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, "Mcp-Session-Id", sid, "MCP-Protocol-Version", "2025-11-25"),
		http.StatusNotFound, schema.CodeInvalidRequest)
}

// TestOfficialClientStateless runs the official MCP Go SDK client at its
// default revision, the stateless 2026-07-28, against the gateway: it
// connects with server/discover (no session), lists the worker's tools
// and calls one, receiving the call's progress notification and a final
// result carrying the server's info.
func TestOfficialClientStateless(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{ServerInfo: schema.Implementation{Name: "gw-sdk", Version: "2"}})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	progress := make(chan *mcp.ProgressNotificationParams, 4)
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tg.url, HTTPClient: tg.client, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v, sid := cs.InitializeResult().ProtocolVersion, cs.ID(); v != "2026-07-28" || sid != "" {
		t.Fatalf("revision %s, session %q: want 2026-07-28 and no session", v, sid)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != len(testTools) {
		t.Errorf("%d tools, want %d", len(tools.Tools), len(testTools))
	}
	params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	params.SetProgressToken("stateless-token")
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Content) != 1 || res.IsError {
		t.Fatalf("result %+v", res)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "done" {
		t.Errorf("content %+v", res.Content[0])
	}
	if info, _ := res.Meta[schema.MetaServerInfo].(map[string]any); info["name"] != "gw-sdk" {
		t.Errorf("_meta %v: want the server's info", res.Meta)
	}
	if p := await(t, progress, "the progress notification"); p.ProgressToken != "stateless-token" {
		t.Errorf("progress notification %+v", p)
	}
}
