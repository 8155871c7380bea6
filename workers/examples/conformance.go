package examples

import (
	"context"
	"errors"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// Fixtures the official conformance suite expects (a 1x1 PNG and a silent
// WAV, base64).
const (
	fixturePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	fixtureWAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

// NoArgs is the input of tools that take no arguments.
type NoArgs struct{}

// Conformance returns the group of fixture tools that the official MCP
// conformance suite calls (`make conformance`). It holds the tool
// scenarios that need only content; the rest of the suite's fixtures
// (logging, progress, sampling, elicitation, resources, prompts) come with
// the features they exercise.
func Conformance() *workers.Group {
	g := workers.NewGroup("conformance")
	fixed := func(name, description string, content ...schema.Content) {
		workers.AddTool(g, workers.Tool{Name: name, Description: description},
			func(context.Context, *workers.Call, NoArgs) (*schema.ToolResult, error) {
				return &schema.ToolResult{Content: content}, nil
			})
	}
	fixed("test_simple_text", "Tests simple text content response",
		schema.Content{Type: "text", Text: "This is a simple text response for testing."})
	fixed("test_image_content", "Tests image content response",
		schema.Content{Type: "image", Data: fixturePNG, MimeType: "image/png"})
	fixed("test_audio_content", "Tests audio content response",
		schema.Content{Type: "audio", Data: fixtureWAV, MimeType: "audio/wav"})
	fixed("test_embedded_resource", "Tests embedded resource content response",
		schema.Content{Type: "resource", Resource: &schema.ResourceContents{
			URI: "test://embedded-resource", MimeType: "text/plain", Text: "This is an embedded resource"}})
	fixed("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)",
		schema.Content{Type: "text", Text: "This is text content"},
		schema.Content{Type: "image", Data: fixturePNG, MimeType: "image/png"},
		schema.Content{Type: "resource", Resource: &schema.ResourceContents{
			URI: "test://embedded-in-multiple", MimeType: "text/plain", Text: "This is an embedded resource"}})
	workers.AddTool(g, workers.Tool{Name: "test_error_handling", Description: "Tests error response handling"},
		func(context.Context, *workers.Call, NoArgs) (*schema.ToolResult, error) {
			return nil, errors.New("this tool intentionally returns an error for testing")
		})
	return g
}
