package itest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestHTTPSSETransport2024: clients of the 2024-11-05 HTTP+SSE transport
// (the official client's SSE transport, and mcp-go's) open the stream at
// /sse, post to the endpoint it names, and get answers, progress and tool
// results through JetStream workers on the stream; the session ends with
// the stream.
func TestHTTPSSETransport2024(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "demo,conformance")
	sseURL := strings.TrimSuffix(endpoint, "/mcp") + "/sse"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("go-sdk", func(t *testing.T) {
		progress := make(chan float64, 8)
		client := mcp.NewClient(&mcp.Implementation{Name: "itest-sse", Version: "1"}, &mcp.ClientOptions{
			ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) { progress <- req.Params.Progress },
		})
		cs, err := client.Connect(ctx, &mcp.SSEClientTransport{Endpoint: sseURL, HTTPClient: &http.Client{}},
			&mcp.ClientSessionOptions{ProtocolVersion: "2024-11-05"})
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		if v := cs.InitializeResult().ProtocolVersion; v != "2024-11-05" {
			t.Errorf("negotiated %s, want 2024-11-05", v)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "over SSE"}})
		if err != nil || res.Content[0].(*mcp.TextContent).Text != "over SSE" {
			t.Fatalf("echo: %v, %v", res, err)
		}
		params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
		params.SetProgressToken("sse")
		if _, err := cs.CallTool(ctx, params); err != nil {
			t.Fatal(err)
		}
		awaitN(t, ctx, progress, 3, "progress did not arrive on the stream")
		prompts, err := cs.ListPrompts(ctx, nil)
		if err != nil || len(prompts.Prompts) == 0 {
			t.Fatalf("prompts/list: %v, %v", prompts, err)
		}
	})
	t.Run("mcp-go", func(t *testing.T) {
		c, err := mcpgoclient.NewSSEMCPClient(sseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ProtocolVersion: "2024-11-05",
			ClientInfo: mcpgo.Implementation{Name: "itest-sse-mcp-go", Version: "1"}}}); err != nil {
			t.Fatal(err)
		}
		res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 2}}})
		if err != nil || res.IsError {
			t.Fatalf("add: %v, %v", res, err)
		}
	})
	// A message for a session that does not exist is 404, and a
	// Streamable HTTP request cannot borrow an HTTP+SSE session.
	if r := post(t, strings.TrimSuffix(endpoint, "/mcp")+"/messages?sessionId=0123456789abcdef0123456789abcdef", `{"jsonrpc":"2.0","id":1,"method":"ping"}`); r.status != http.StatusNotFound {
		t.Errorf("unknown session: status %d", r.status)
	}
	dev.stop()
}
