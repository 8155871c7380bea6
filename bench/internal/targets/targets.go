// Package targets builds the plain MCP servers that mcpstream is compared
// with and that the bench tests drive: a mark3labs/mcp-go server and an
// official modelcontextprotocol/go-sdk server, each serving Streamable HTTP
// with the tools echo {text} (returns the text as text content), fail {}
// (always a tool error, isError: true) and increment {by} (adds to a
// counter and returns the new total as structured content and its JSON as
// text, as mcpstream's demo increment does: neither read-only nor
// idempotent). Neither logs; neither stores anything for increment.
package targets

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPGo returns a mark3labs/mcp-go Streamable HTTP handler. Mounted
// anywhere, it serves MCP on every path.
func MCPGo() http.Handler {
	var counter atomic.Int64
	s := mcpgoserver.NewMCPServer("mcp-go-echo", "1", mcpgoserver.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("echo",
		mcpgo.WithDescription("Returns its text."),
		mcpgo.WithString("text", mcpgo.Required(), mcpgo.Description("the text to send back")),
	), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	s.AddTool(mcpgo.NewTool("fail", mcpgo.WithDescription("Always fails.")),
		func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultError("failed as asked"), nil
		})
	s.AddTool(mcpgo.NewTool("increment",
		mcpgo.WithDescription("Adds by (default 1) to a counter and returns the new total."),
		mcpgo.WithNumber("by", mcpgo.Description("what to add (default 1)")),
		mcpgo.WithReadOnlyHintAnnotation(false), mcpgo.WithIdempotentHintAnnotation(false),
		mcpgo.WithDestructiveHintAnnotation(false), mcpgo.WithOpenWorldHintAnnotation(false),
	), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		out := IncrementOut{Total: counter.Add(int64(req.GetFloat("by", 1)))}
		return mcpgo.NewToolResultStructured(out, fmt.Sprintf(`{"total":%d}`, out.Total)), nil
	})
	return mcpgoserver.NewStreamableHTTPServer(s,
		mcpgoserver.WithStreamableHTTPLogger(quiet()))
}

// EchoIn is the echo tool's input.
type EchoIn struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// IncrementIn is the increment tool's input.
type IncrementIn struct {
	By int64 `json:"by,omitempty" jsonschema:"what to add (default 1)"`
}

// IncrementOut is the increment tool's structured output.
type IncrementOut struct {
	Total int64 `json:"total"`
}

// GoSDK returns an official go-sdk Streamable HTTP handler: stateful
// sessions, and JSON responses (StreamableHTTPOptions.JSONResponse), as
// mcpstream and mcp-go answer a call whose client accepts JSON; go-sdk's
// default would answer with an event stream, a heavier response mode.
func GoSDK() http.Handler {
	var counter atomic.Int64
	s := gosdk.NewServer(&gosdk.Implementation{Name: "go-sdk-echo", Version: "1"}, nil)
	gosdk.AddTool(s, &gosdk.Tool{Name: "echo", Description: "Returns its text."},
		func(_ context.Context, _ *gosdk.CallToolRequest, in EchoIn) (*gosdk.CallToolResult, any, error) {
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: in.Text}}}, nil, nil
		})
	gosdk.AddTool(s, &gosdk.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *gosdk.CallToolRequest, struct{}) (*gosdk.CallToolResult, any, error) {
			return &gosdk.CallToolResult{IsError: true, Content: []gosdk.Content{&gosdk.TextContent{Text: "failed as asked"}}}, nil, nil
		})
	no := false
	gosdk.AddTool(s, &gosdk.Tool{Name: "increment", Description: "Adds by (default 1) to a counter and returns the new total.",
		Annotations: &gosdk.ToolAnnotations{IdempotentHint: false, DestructiveHint: &no, OpenWorldHint: &no}},
		func(_ context.Context, _ *gosdk.CallToolRequest, in IncrementIn) (*gosdk.CallToolResult, IncrementOut, error) {
			if in.By == 0 {
				in.By = 1
			}
			return nil, IncrementOut{Total: counter.Add(in.By)}, nil
		})
	return gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s },
		&gosdk.StreamableHTTPOptions{JSONResponse: true})
}

// quiet is a logger that drops everything.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
