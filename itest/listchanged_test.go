package itest

import (
	"context"
	"slices"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestToolListChanged: a worker registers a new tool while clients are
// connected (the official client and mcp-go); each one's GET event stream
// carries notifications/tools/list_changed, and tools/list then has the
// tool.
func TestToolListChanged(t *testing.T) {
	s := newStack(t, gateway.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	changed := make(chan struct{}, 4)
	cs := connectOfficial(t, ctx, s.url, "itest-list-changed", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	defer cs.Close()
	if !cs.InitializeResult().Capabilities.Tools.ListChanged {
		t.Fatal("initialize does not announce tools.listChanged")
	}
	// mcp-go too, in a 2025-11-25 session with its GET stream.
	mc, err := mcpgoclient.NewStreamableHttpClient(s.url, transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	mcpgoChanged := make(chan struct{}, 4)
	mc.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method == "notifications/tools/list_changed" {
			mcpgoChanged <- struct{}{}
		}
	})
	if err := mc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ProtocolVersion: "2025-11-25",
		ClientInfo: mcpgo.Implementation{Name: "itest-list-changed-mcp-go", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	awaitStreams(t, s.gw, 2) // both clients' GET streams are open

	g := workers.NewGroup("late")
	workers.AddTool(g, workers.Tool{Name: "late_tool"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			return workers.TextResult("late"), nil
		})
	s.runGroup(t, g, "late_tool")
	awaitN(t, ctx, changed, 1, "no notifications/tools/list_changed after a new tool was registered")
	awaitN(t, ctx, mcpgoChanged, 1, "mcp-go got no notifications/tools/list_changed")
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "late_tool" }) {
		t.Fatal("tools/list lacks the new tool")
	}
}
