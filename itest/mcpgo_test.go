package itest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// TestMCPGoFeatures: mcp-go, in a 2025-11-25 session and in 2026-07-28,
// lists and reads resources, lists and gets prompts, completes a prompt
// argument and gets progress notifications, all served by a worker group
// through JetStream.
func TestMCPGoFeatures(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, version := range []string{"2025-11-25", ""} {
		name := version
		if name == "" {
			name = "negotiated"
		}
		t.Run(name, func(t *testing.T) {
			c, err := mcpgoclient.NewStreamableHttpClient(endpoint, transport.WithHTTPBasicClient(&http.Client{}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			progress := make(chan float64, 8)
			c.OnNotification(func(n mcpgo.JSONRPCNotification) {
				if n.Method == "notifications/progress" {
					if p, ok := n.Params.AdditionalFields["progress"].(float64); ok {
						progress <- p
					}
				}
			})
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			init, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ProtocolVersion: version,
				ClientInfo: mcpgo.Implementation{Name: "itest-mcp-go-features", Version: "1"}}})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"": "2026-07-28"}[version]; want != "" && init.ProtocolVersion != want {
				t.Fatalf("negotiated %s", init.ProtocolVersion)
			}
			res, err := c.ListResources(ctx, mcpgo.ListResourcesRequest{})
			if err != nil || len(res.Resources) != 3 {
				t.Fatalf("resources/list: %v, %v", res, err)
			}
			read, err := c.ReadResource(ctx, mcpgo.ReadResourceRequest{Params: mcpgo.ReadResourceParams{URI: "test://template/9/data"}})
			if err != nil || len(read.Contents) != 1 || !strings.Contains(read.Contents[0].(mcpgo.TextResourceContents).Text, "Data for ID: 9") {
				t.Fatalf("resources/read: %v, %v", read, err)
			}
			prompts, err := c.ListPrompts(ctx, mcpgo.ListPromptsRequest{})
			if err != nil || len(prompts.Prompts) < 4 {
				t.Fatalf("prompts/list: %v, %v", prompts, err)
			}
			got, err := c.GetPrompt(ctx, mcpgo.GetPromptRequest{Params: mcpgo.GetPromptParams{Name: "test_prompt_with_arguments",
				Arguments: map[string]string{"arg1": "p", "arg2": "q"}}})
			if err != nil || !strings.Contains(got.Messages[0].Content.(mcpgo.TextContent).Text, "arg1='p'") {
				t.Fatalf("prompts/get: %v, %v", got, err)
			}
			comp, err := c.Complete(ctx, mcpgo.CompleteRequest{Params: mcpgo.CompleteParams{
				Ref:      mcpgo.PromptReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
				Argument: mcpgo.CompleteArgument{Name: "arg1", Value: "pa"}}})
			if err != nil || strings.Join(comp.Completion.Values, ",") != "paris,park,party" {
				t.Fatalf("completion/complete: %v, %v", comp, err)
			}
			call := mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "test_tool_with_progress", Meta: &mcpgo.Meta{ProgressToken: "m"}}}
			if _, err := c.CallTool(ctx, call); err != nil {
				t.Fatal(err)
			}
			awaitN(t, ctx, progress, 3, "progress notifications did not reach mcp-go")
		})
	}
	dev.stop()
}
