// Package targets builds the plain MCP servers that mcpstream is compared
// with and that the bench tests drive: a mark3labs/mcp-go server and an
// official modelcontextprotocol/go-sdk server, each serving Streamable HTTP
// with the tools echo {text} (returns the text as text content) and fail
// {} (always a tool error, isError: true). Neither logs.
package targets

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPGo returns a mark3labs/mcp-go Streamable HTTP handler. Mounted
// anywhere, it serves MCP on every path.
func MCPGo() http.Handler {
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
	return mcpgoserver.NewStreamableHTTPServer(s,
		mcpgoserver.WithStreamableHTTPLogger(quiet()))
}

// EchoIn is the echo tool's input.
type EchoIn struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// GoSDK returns an official go-sdk Streamable HTTP handler: stateful
// sessions, and JSON responses (StreamableHTTPOptions.JSONResponse), as
// mcpstream and mcp-go answer a call whose client accepts JSON; go-sdk's
// default would answer with an event stream, a heavier response mode.
func GoSDK() http.Handler {
	s := gosdk.NewServer(&gosdk.Implementation{Name: "go-sdk-echo", Version: "1"}, nil)
	gosdk.AddTool(s, &gosdk.Tool{Name: "echo", Description: "Returns its text."},
		func(_ context.Context, _ *gosdk.CallToolRequest, in EchoIn) (*gosdk.CallToolResult, any, error) {
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: in.Text}}}, nil, nil
		})
	gosdk.AddTool(s, &gosdk.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *gosdk.CallToolRequest, struct{}) (*gosdk.CallToolResult, any, error) {
			return &gosdk.CallToolResult{IsError: true, Content: []gosdk.Content{&gosdk.TextContent{Text: "failed as asked"}}}, nil, nil
		})
	return gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s },
		&gosdk.StreamableHTTPOptions{JSONResponse: true})
}

// quiet is a logger that drops everything.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
