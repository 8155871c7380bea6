package examples

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// Requested schemas of the conformance suite's elicitation fixtures.
var (
	usernameSchema = json.RawMessage(`{"type":"object","properties":{"username":{"type":"string","description":"Your preferred username"}},"required":["username"]}`)

	defaultsSchema = json.RawMessage(`{"type":"object","properties":{` +
		`"name":{"type":"string","description":"User name","default":"John Doe"},` +
		`"age":{"type":"integer","description":"User age","default":30},` +
		`"score":{"type":"number","description":"User score","default":95.5},` +
		`"status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},` +
		`"verified":{"type":"boolean","description":"Verification status","default":true}}}`)

	enumsSchema = json.RawMessage(`{"type":"object","properties":{` +
		`"untitledSingle":{"type":"string","enum":["option1","option2","option3"]},` +
		`"titledSingle":{"type":"string","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},` +
		`"legacyEnum":{"type":"string","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},` +
		`"untitledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},` +
		`"titledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","anyOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]}}}}`)
)

// SamplingArgs is the input of test_sampling.
type SamplingArgs struct {
	Prompt string `json:"prompt" jsonschema:"The prompt to send to the LLM"`
}

// ElicitationArgs is the input of test_elicitation.
type ElicitationArgs struct {
	Message string `json:"message" jsonschema:"The message to show the user"`
}

// addClientRequestFixtures adds the tools that ask the client something
// while they run: sampling and three elicitations.
func addClientRequestFixtures(g *workers.Group) {
	workers.AddTool(g, workers.Tool{Name: "test_sampling", Description: "Tests server-initiated sampling (LLM completion request)"},
		func(ctx context.Context, call *workers.Call, in SamplingArgs) (*schema.ToolResult, error) {
			res, err := call.Sample(ctx, &schema.CreateMessageParams{MaxTokens: 100,
				Messages: []schema.SamplingMessage{{Role: "user", Content: schema.Content{Type: "text", Text: in.Prompt}}}})
			if err != nil {
				return nil, fmt.Errorf("sampling failed: %w", err)
			}
			text := "(non-text response)"
			if res.Content.Type == "text" {
				text = res.Content.Text
			}
			return workers.TextResult("LLM response: " + text), nil
		})
	addElicitation(g, "test_elicitation", "Tests server-initiated elicitation (user input request)",
		func(in ElicitationArgs) string { return in.Message }, usernameSchema)
	addElicitation(g, "test_elicitation_sep1034_defaults", "Tests elicitation with default values per SEP-1034",
		func(NoArgs) string { return "Test defaults for primitives" }, defaultsSchema)
	addElicitation(g, "test_elicitation_sep1330_enums", "Tests elicitation with enum schema improvements per SEP-1330",
		func(NoArgs) string { return "Test enum schemas" }, enumsSchema)
}

// addElicitation adds a tool that asks the user for input of the requested
// schema, with the message it makes from its arguments, and reports the
// answer.
func addElicitation[In any](g *workers.Group, name, description string, message func(In) string, requested json.RawMessage) {
	workers.AddTool(g, workers.Tool{Name: name, Description: description},
		func(ctx context.Context, call *workers.Call, in In) (*schema.ToolResult, error) {
			res, err := call.Elicit(ctx, &schema.ElicitParams{Message: message(in), RequestedSchema: requested})
			if err != nil {
				return nil, fmt.Errorf("elicitation failed: %w", err)
			}
			content, _ := json.Marshal(res.Content)
			return workers.TextResult(fmt.Sprintf("Elicitation result: action=%s, content=%s", res.Action, content)), nil
		})
}
