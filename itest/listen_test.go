package itest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/workers"
)

// TestListenStreams: in 2026-07-28 the official client opens a
// subscriptions/listen stream for the changes it has handlers for. A worker
// that adds a tool or a prompt while it runs registers it at once, and the
// stream carries the list_changed notifications; a resource subscription is
// another listen stream, which carries the worker's resource updates.
func TestListenStreams(t *testing.T) {
	dev, endpoint, natsURL := startDev(t, true, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tools, prompts, updated := make(chan struct{}, 8), make(chan struct{}, 8), make(chan string, 8)
	client := mcp.NewClient(&mcp.Implementation{Name: "itest-listen", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler:   func(context.Context, *mcp.ToolListChangedRequest) { tools <- struct{}{} },
		PromptListChangedHandler: func(context.Context, *mcp.PromptListChangedRequest) { prompts <- struct{}{} },
		ResourceUpdatedHandler:   func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %s", v)
	}
	await := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no %s arrived", what)
		}
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_trigger_tool_change"}); err != nil {
		t.Fatal(err)
	}
	await("notifications/tools/list_changed", tools)
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range list.Tools {
		found = found || tool.Name == "test_dynamic_tool_1"
	}
	if !found {
		t.Error("the tool added at run time is not listed")
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_dynamic_tool_1"}); err != nil || res.IsError {
		t.Errorf("calling the tool added at run time: %v, %v", res, err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_trigger_prompt_change"}); err != nil {
		t.Fatal(err)
	}
	await("notifications/prompts/list_changed", prompts)

	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://watched-resource"}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The subscription's stream is open once Subscribe returns (the
	// client waits for its acknowledgment).
	if err := workers.ResourceUpdated(nc, "test://other"); err != nil {
		t.Fatal(err)
	}
	if err := workers.ResourceUpdated(nc, "test://watched-resource"); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != "test://watched-resource" {
			t.Fatalf("update for %s, want only the subscribed URI", uri)
		}
	case <-ctx.Done():
		t.Fatal("no notifications/resources/updated arrived")
	}
	dev.stop()
}
