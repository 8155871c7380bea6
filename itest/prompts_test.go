package itest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestPrompts: the official client lists the prompts a worker group
// registered and gets them through JetStream; a missing required argument
// and an unknown prompt are protocol errors.
func TestPrompts(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--examples", "conformance")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, endpoint, "itest-prompts", nil)
	defer cs.Close()
	if cs.InitializeResult().Capabilities.Prompts == nil {
		t.Fatal("initialize does not announce prompts")
	}
	list, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Prompts {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "test_input_required_result_prompt,test_prompt_with_arguments,test_prompt_with_embedded_resource,test_prompt_with_image,test_simple_prompt" {
		t.Fatalf("prompts/list: %v", names)
	}
	res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "x", "arg2": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || res.Messages[0].Content.(*mcp.TextContent).Text != "Prompt with arguments: arg1='x', arg2='y'" {
		t.Fatalf("prompts/get: %+v", res)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "x"}}); err == nil || !strings.Contains(err.Error(), "arg2") {
		t.Fatalf("missing required argument: %v", err)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "nope"}); err == nil || !strings.Contains(err.Error(), "Unknown prompt") {
		t.Fatalf("unknown prompt: %v", err)
	}
	dev.stop()
}
