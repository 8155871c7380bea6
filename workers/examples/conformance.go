package examples

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
// conformance suite calls (`make conformance`): tools with every kind of
// content, logging, progress, sampling and elicitation, and the suite's
// prompts and resources.
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
	workers.AddTool(g, workers.Tool{Name: "test_tool_with_logging", Description: "Tests tool that emits log messages during execution"},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			for i, m := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
				if i > 0 && !pause(ctx, 50*time.Millisecond) {
					return nil, ctx.Err()
				}
				if err := call.Log("info", "", m); err != nil {
					return nil, err
				}
			}
			return workers.TextResult("Tool with logging executed successfully"), nil
		})
	workers.AddTool(g, workers.Tool{Name: "test_tool_with_progress", Description: "Tests tool that reports progress notifications"},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			for _, p := range []float64{0, 50, 100} {
				if err := call.Progress(p, 100, fmt.Sprintf("Completed step %.0f of %.0f", p, 100.0)); err != nil {
					return nil, err
				}
				if !pause(ctx, 50*time.Millisecond) {
					return nil, ctx.Err()
				}
			}
			// The result is the progress token, as the suite expects.
			var token any
			_ = json.Unmarshal(call.ProgressToken(), &token)
			return workers.TextResult(fmt.Sprint(token)), nil
		})
	prompt := func(p schema.Prompt, render func(args map[string]string) *schema.PromptResult) {
		workers.AddPrompt(g, p, func(_ context.Context, _ *workers.Call, args map[string]string) (*schema.PromptResult, error) {
			return render(args), nil
		})
	}
	user := func(c schema.Content) schema.PromptMessage { return schema.PromptMessage{Role: "user", Content: c} }
	text := func(t string) schema.Content { return schema.Content{Type: "text", Text: t} }
	prompt(schema.Prompt{Name: "test_simple_prompt", Title: "Simple Test Prompt", Description: "A simple prompt without arguments"},
		func(map[string]string) *schema.PromptResult {
			return &schema.PromptResult{Description: "A simple test prompt",
				Messages: []schema.PromptMessage{user(text("This is a simple prompt for testing."))}}
		})
	prompt(schema.Prompt{Name: "test_prompt_with_arguments", Title: "Prompt With Arguments", Description: "A prompt with required arguments",
		Arguments: []schema.PromptArgument{{Name: "arg1", Description: "First test argument", Required: true},
			{Name: "arg2", Description: "Second test argument", Required: true}}},
		func(a map[string]string) *schema.PromptResult {
			return &schema.PromptResult{Description: "A prompt with arguments",
				Messages: []schema.PromptMessage{user(text(fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", a["arg1"], a["arg2"])))}}
		})
	prompt(schema.Prompt{Name: "test_prompt_with_embedded_resource", Title: "Prompt With Embedded Resource",
		Description: "A prompt that includes an embedded resource",
		Arguments:   []schema.PromptArgument{{Name: "resourceUri", Description: "URI of the resource to embed", Required: true}}},
		func(a map[string]string) *schema.PromptResult {
			return &schema.PromptResult{Description: "A prompt with an embedded resource", Messages: []schema.PromptMessage{
				user(schema.Content{Type: "resource", Resource: &schema.ResourceContents{URI: a["resourceUri"], MimeType: "text/plain",
					Text: "Embedded resource content for testing."}}),
				user(text("Please process the embedded resource above."))}}
		})
	prompt(schema.Prompt{Name: "test_prompt_with_image", Title: "Prompt With Image", Description: "A prompt that includes image content"},
		func(map[string]string) *schema.PromptResult {
			return &schema.PromptResult{Description: "A prompt with an image", Messages: []schema.PromptMessage{
				user(schema.Content{Type: "image", Data: fixturePNG, MimeType: "image/png"}),
				user(text("Please analyze the image above."))}}
		})
	workers.AddResource(g, schema.Resource{URI: "test://static-text", Name: "static-text",
		Description: "A static text resource for testing", MimeType: "text/plain"},
		func(_ context.Context, _ *workers.Call, uri string, _ map[string]string) ([]schema.ResourceContents, error) {
			return []schema.ResourceContents{{URI: uri, MimeType: "text/plain", Text: "This is the content of the static text resource."}}, nil
		})
	workers.AddResource(g, schema.Resource{URI: "test://static-binary", Name: "static-binary",
		Description: "A static binary resource (image) for testing", MimeType: "image/png"},
		func(_ context.Context, _ *workers.Call, uri string, _ map[string]string) ([]schema.ResourceContents, error) {
			return []schema.ResourceContents{{URI: uri, MimeType: "image/png", Blob: fixturePNG}}, nil
		})
	workers.AddResource(g, schema.Resource{URI: "test://watched-resource", Name: "watched-resource",
		Description: "A resource clients subscribe to", MimeType: "text/plain"},
		func(_ context.Context, _ *workers.Call, uri string, _ map[string]string) ([]schema.ResourceContents, error) {
			return []schema.ResourceContents{{URI: uri, MimeType: "text/plain", Text: "Watched resource content"}}, nil
		})
	workers.AddResourceTemplate(g, schema.ResourceTemplate{URITemplate: "test://template/{id}/data", Name: "template",
		Description: "A resource template with parameter substitution", MimeType: "application/json"},
		func(_ context.Context, _ *workers.Call, uri string, vars map[string]string) ([]schema.ResourceContents, error) {
			id := vars["id"]
			return []schema.ResourceContents{{URI: uri, MimeType: "application/json",
				Text: fmt.Sprintf(`{"id": "%s", "templateTest": true, "data": "Data for ID: %s"}`, id, id)}}, nil
		})
	workers.AddTool(g, workers.Tool{Name: "test_error_handling", Description: "Tests error response handling"},
		func(context.Context, *workers.Call, NoArgs) (*schema.ToolResult, error) {
			return nil, errors.New("this tool intentionally returns an error for testing")
		})
	workers.CompletePrompt(g, "test_prompt_with_arguments", workers.Suggest(map[string][]string{
		"arg1": {"paris", "park", "party", "test", "testing"}, "arg2": {"alpha", "beta", "gamma"}}))
	workers.CompleteTemplate(g, "test://template/{id}/data", workers.Suggest(map[string][]string{"id": {"123", "124", "200"}}))
	addClientRequestFixtures(g)
	addStatelessFixtures(g)
	addSchemaFixtures(g)
	addTaskFixtures(g)
	return g
}

// pause waits d, or reports false when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
