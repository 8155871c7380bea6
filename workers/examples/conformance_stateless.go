package examples

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// maxDynamic bounds the tools and prompts the trigger fixtures add.
const maxDynamic = 200

// Questions of the input-required (multi round-trip) fixtures.
var (
	askName = workers.InputRequest{Key: "user_name", Method: schema.MethodElicitationCreate, Params: &schema.ElicitParams{
		Message:         "What is your name?",
		RequestedSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}}
	askGreeting = workers.InputRequest{Key: "greeting", Method: schema.MethodSamplingCreateMessage, Params: &schema.CreateMessageParams{
		MaxTokens: 50, Messages: []schema.SamplingMessage{{Role: "user", Content: schema.Content{Type: "text", Text: "Say hello."}}}}}
	askRoots   = workers.InputRequest{Key: "client_roots", Method: schema.MethodRootsList, Params: struct{}{}}
	askConfirm = workers.InputRequest{Key: "confirm", Method: schema.MethodElicitationCreate, Params: &schema.ElicitParams{
		Message:         "Proceed?",
		RequestedSchema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)}}
)

// addStatelessFixtures adds the fixtures of the suite's 2026-07-28
// scenarios: a tool that needs a capability, tools for the stream checks,
// and the input-required tools and prompt, which ask their questions with
// Call.Ask and so also work, as plain requests to the client, in the
// session revisions.
func addStatelessFixtures(g *workers.Group) {
	text := func(name, description string, run func(context.Context, *workers.Call) (string, error)) {
		workers.AddTool(g, workers.Tool{Name: name, Description: description},
			func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
				out, err := run(ctx, call)
				if err != nil {
					return nil, err
				}
				return workers.TextResult(out), nil
			})
	}
	text("test_missing_capability", "Requires the sampling client capability (answers -32021 without it)",
		func(_ context.Context, call *workers.Call) (string, error) {
			if err := call.RequireCapability("sampling"); err != nil {
				return "", err
			}
			return "Client declared the sampling capability; tool executed.", nil
		})
	text("test_streaming_elicitation", "Returns a plain result: no request to the client on its stream",
		func(context.Context, *workers.Call) (string, error) {
			return "stream observed: result frames only, no top-level requests", nil
		})
	text("test_logging_tool", "Emits a log message, which the gateway drops unless the request set a log level",
		func(_ context.Context, call *workers.Call) (string, error) {
			if err := call.Log("info", "", "test_logging_tool executed"); err != nil {
				return "", err
			}
			return "Log attempted; the gateway gates on the request's log level.", nil
		})
	// The triggers change the group's lists while it runs: the worker
	// registers the new entry at once, and gateways tell listeners.
	var added atomic.Int32
	grow := func(kind string, add func(n int32)) func(context.Context, *workers.Call) (string, error) {
		return func(context.Context, *workers.Call) (string, error) {
			n := added.Add(1)
			if n > maxDynamic {
				return "", fmt.Errorf("at most %d %ss are added", maxDynamic, kind)
			}
			add(n)
			return fmt.Sprintf("added a %s", kind), nil
		}
	}
	text("test_trigger_tool_change", "Adds a tool, so that listeners get notifications/tools/list_changed",
		grow("tool", func(n int32) {
			workers.AddTool(g, workers.Tool{Name: fmt.Sprintf("test_dynamic_tool_%d", n), Description: "A tool added at run time"},
				func(context.Context, *workers.Call, NoArgs) (*schema.ToolResult, error) {
					return workers.TextResult("dynamic"), nil
				})
		}))
	text("test_trigger_prompt_change", "Adds a prompt, so that listeners get notifications/prompts/list_changed",
		grow("prompt", func(n int32) {
			workers.AddPrompt(g, schema.Prompt{Name: fmt.Sprintf("test_dynamic_prompt_%d", n), Description: "A prompt added at run time"},
				func(context.Context, *workers.Call, map[string]string) (*schema.PromptResult, error) {
					return &schema.PromptResult{Messages: []schema.PromptMessage{{Role: "user", Content: schema.Content{Type: "text", Text: "dynamic"}}}}, nil
				})
		}))
	text("test_input_required_result_elicitation", "Asks for the caller's name (input required)",
		func(ctx context.Context, call *workers.Call) (string, error) {
			got, err := askFor[schema.ElicitResult](ctx, call, askName)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Hello, %v!", got.Content["name"]), nil
		})
	text("test_input_required_result_sampling", "Asks the client's model a question (input required)",
		func(ctx context.Context, call *workers.Call) (string, error) {
			got, err := askFor[schema.CreateMessageResult](ctx, call, workers.InputRequest{Key: "capital_question",
				Method: schema.MethodSamplingCreateMessage, Params: &schema.CreateMessageParams{MaxTokens: 100,
					Messages: []schema.SamplingMessage{{Role: "user", Content: schema.Content{Type: "text", Text: "What is the capital of France?"}}}}})
			if err != nil {
				return "", err
			}
			return "LLM response: " + got.Content.Text, nil
		})
	text("test_input_required_result_list_roots", "Asks the client for its roots (input required)",
		func(ctx context.Context, call *workers.Call) (string, error) {
			got, err := askFor[schema.ListRootsResult](ctx, call, askRoots)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Client has %d root(s)", len(got.Roots)), nil
		})
	confirm := func(ctx context.Context, call *workers.Call) (string, error) {
		if _, err := askFor[schema.ElicitResult](ctx, call, askConfirm); err != nil {
			return "", err
		}
		return "state-ok: confirmed", nil
	}
	text("test_input_required_result_request_state", "Round-trips a signed requestState with an elicitation", confirm)
	text("test_input_required_result_tampered_state", "Rejects a requestState that was tampered with", confirm)
	text("test_input_required_result_multiple_inputs", "Asks for a name, a greeting and the roots in one round",
		func(ctx context.Context, call *workers.Call) (string, error) {
			got, err := call.AskAll(ctx, askName, askGreeting, askRoots)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Got %d answers", len(got)), nil
		})
	text("test_input_required_result_multi_round", "Asks for a name, then, in a second round, a colour",
		func(ctx context.Context, call *workers.Call) (string, error) {
			name, err := askFor[schema.ElicitResult](ctx, call, workers.InputRequest{Key: "step1", Method: schema.MethodElicitationCreate,
				Params: &schema.ElicitParams{Message: "Your name?", RequestedSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}})
			if err != nil {
				return "", err
			}
			colour, err := askFor[schema.ElicitResult](ctx, call, workers.InputRequest{Key: "step2", Method: schema.MethodElicitationCreate,
				Params: &schema.ElicitParams{Message: fmt.Sprintf("Your favourite colour, %v?", name.Content["name"]),
					RequestedSchema: json.RawMessage(`{"type":"object","properties":{"color":{"type":"string"}},"required":["color"]}`)}})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%v likes %v", name.Content["name"], colour.Content["color"]), nil
		})
	text("test_input_required_result_capabilities", "Asks only what the client's capabilities allow",
		func(ctx context.Context, call *workers.Call) (string, error) {
			var qs []workers.InputRequest
			for _, q := range []workers.InputRequest{askName, askGreeting, askRoots} {
				if call.ClientCan(schema.ClientCapability(q.Method)) {
					qs = append(qs, q)
				}
			}
			if len(qs) == 0 {
				return "Nothing to ask: the client declared no capability for it", nil
			}
			got, err := call.AskAll(ctx, qs...)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Got %d answers", len(got)), nil
		})
	workers.AddPrompt(g, schema.Prompt{Name: "test_input_required_result_prompt", Description: "A prompt that asks the user for context first"},
		func(ctx context.Context, call *workers.Call, _ map[string]string) (*schema.PromptResult, error) {
			got, err := askFor[schema.ElicitResult](ctx, call, workers.InputRequest{Key: "user_context", Method: schema.MethodElicitationCreate,
				Params: &schema.ElicitParams{Message: "What context should the prompt use?",
					RequestedSchema: json.RawMessage(`{"type":"object","properties":{"context":{"type":"string"}},"required":["context"]}`)}})
			if err != nil {
				return nil, err
			}
			return &schema.PromptResult{Messages: []schema.PromptMessage{{Role: "user",
				Content: schema.Content{Type: "text", Text: fmt.Sprintf("Context: %v", got.Content["context"])}}}}, nil
		})
}

// askFor asks one question and decodes the answer.
func askFor[T any](ctx context.Context, call *workers.Call, q workers.InputRequest) (*T, error) {
	raw, err := call.Ask(ctx, q.Key, q.Method, q.Params)
	if err != nil {
		return nil, err
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decoding the answer to %s: %w", q.Key, err)
	}
	return &out, nil
}

// Input schemas given as is, for the suite's schema and header checks.
var (
	schema202012 = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
		`"$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},` +
		`"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},` +
		`"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},` +
		`"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],` +
		`"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},` +
		`"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}`)
	schemaHeader = json.RawMessage(`{"type":"object","properties":{` +
		`"region":{"type":"string","description":"mirrored into Mcp-Param-Region","x-mcp-header":"Region"},` +
		`"level":{"type":"integer","description":"non-mirrored argument"}}}`)
)

// RegionArgs is the input of test_x_mcp_header.
type RegionArgs struct {
	Region string `json:"region,omitempty"`
	Level  int    `json:"level,omitempty"`
}

// addSchemaFixtures adds the tools whose input schemas are given as is: a
// JSON Schema 2020-12 one with composition, conditionals and an anchor, and
// one with a property mirrored into a header (x-mcp-header).
func addSchemaFixtures(g *workers.Group) {
	workers.AddTool(g, workers.Tool{Name: "json_schema_2020_12_tool", Description: "Tool with JSON Schema 2020-12 features",
		InputSchema: schema202012},
		func(_ context.Context, _ *workers.Call, in map[string]any) (*schema.ToolResult, error) {
			b, _ := json.Marshal(in)
			return workers.TextResult("JSON Schema 2020-12 tool called with: " + string(b)), nil
		})
	workers.AddTool(g, workers.Tool{Name: "test_x_mcp_header", Description: "Mirrors its region argument into the Mcp-Param-Region header",
		InputSchema: schemaHeader},
		func(_ context.Context, _ *workers.Call, in RegionArgs) (*schema.ToolResult, error) {
			return workers.TextResult("region=" + in.Region), nil
		})
}
