package itest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestToolListChanged: a worker registers a new tool while a client is
// connected; the client's GET event stream carries
// notifications/tools/list_changed, and tools/list then has the tool.
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
	awaitStreams(t, s.gw, 1) // the client's GET stream is open

	g := workers.NewGroup("late")
	workers.AddTool(g, workers.Tool{Name: "late_tool"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			return workers.TextResult("late"), nil
		})
	s.runGroup(t, g, "late_tool")
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no notifications/tools/list_changed after a new tool was registered")
	}
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "late_tool" }) {
		t.Fatal("tools/list lacks the new tool")
	}
}
