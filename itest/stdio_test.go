package itest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStdioBridge: clients that only spawn stdio servers reach a remote
// mcpstream through `mcpstream stdio --url`: the official client in both
// eras (a 2025-11-25 session, and 2026-07-28 with its per-request headers)
// and mcp-go, each listing tools and calling one; progress notifications
// come through as well.
func TestStdioBridge(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "demo,conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, version := range []string{"2025-11-25", ""} {
		t.Run("go-sdk "+version, func(t *testing.T) {
			progress := make(chan float64, 8)
			client := mcp.NewClient(&mcp.Implementation{Name: "itest-stdio", Version: "1"}, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) { progress <- req.Params.Progress },
			})
			var opts *mcp.ClientSessionOptions
			if version != "" {
				opts = &mcp.ClientSessionOptions{ProtocolVersion: version}
			}
			cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(binary, "stdio", "--url", endpoint)}, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			want := version
			if want == "" {
				want = "2026-07-28"
			}
			if got := cs.InitializeResult().ProtocolVersion; got != want {
				t.Fatalf("negotiated %s through the bridge, want %s", got, want)
			}
			tools, err := cs.ListTools(ctx, nil)
			if err != nil || len(tools.Tools) < 3 {
				t.Fatalf("tools/list: %v, %v", tools, err)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "über stdio"}})
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "über stdio" {
				t.Fatalf("echo: %v, %v", res, err)
			}
			params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
			params.SetProgressToken("stdio")
			if _, err := cs.CallTool(ctx, params); err != nil {
				t.Fatal(err)
			}
			awaitN(t, ctx, progress, 3, "progress notifications did not come through the bridge")
		})
	}
	t.Run("mcp-go", func(t *testing.T) {
		c, err := mcpgoclient.NewStdioMCPClient(binary, nil, "stdio", "--url", endpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ClientInfo: mcpgo.Implementation{Name: "itest-stdio-mcp-go", Version: "1"}}}); err != nil {
			t.Fatal(err)
		}
		res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "add", Arguments: map[string]any{"a": 1, "b": 2}}})
		if err != nil || res.IsError {
			t.Fatalf("add: %v, %v", res, err)
		}
	})
	dev.stop()
}
