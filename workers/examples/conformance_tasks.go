package examples

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// GreetArgs is the input of greet.
type GreetArgs struct {
	Name string `json:"name"`
}

// ComputeArgs is the input of slow_compute.
type ComputeArgs struct {
	Seconds float64 `json:"seconds"`
	Label   string  `json:"label,omitempty"`
}

// FileArgs is the input of confirm_delete.
type FileArgs struct {
	Filename string `json:"filename"`
}

// addTaskFixtures adds the tools of the suite's tasks extension scenarios:
// they answer with a task (Call.Detach) when the client declared the
// extension, and keep their state in the task bucket.
func addTaskFixtures(g *workers.Group) {
	workers.AddTool(g, workers.Tool{Name: "greet", Description: "Greets synchronously"},
		func(_ context.Context, _ *workers.Call, in GreetArgs) (*schema.ToolResult, error) {
			return workers.TextResult("Hello, " + in.Name + "!"), nil
		})
	workers.AddTool(g, workers.Tool{Name: "slow_compute", Description: "Computes for the given seconds, as a task when it can",
		TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, call *workers.Call, in ComputeArgs) (*schema.ToolResult, error) {
			if in.Seconds <= 0 { // nothing to wait for: answer at once
				return workers.TextResult(fmt.Sprintf("%s: computed instantly", in.Label)), nil
			}
			ctx, err := call.Detach(ctx)
			if err != nil {
				return nil, err
			}
			if !pause(ctx, time.Duration(in.Seconds*float64(time.Second))) {
				return nil, context.Cause(ctx)
			}
			return workers.TextResult(fmt.Sprintf("%s: computed in %gs", in.Label, in.Seconds)), nil
		})
	workers.AddTool(g, workers.Tool{Name: "failing_job", Description: "A task whose tool fails after a second",
		TaskSupport: schema.TaskSupportRequired},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			ctx, err := call.Detach(ctx)
			if err != nil {
				return nil, err
			}
			if !pause(ctx, time.Second) {
				return nil, context.Cause(ctx)
			}
			return nil, errors.New("the job failed, as it always does")
		})
	workers.AddTool(g, workers.Tool{Name: "protocol_error_job", Description: "A task that ends in a protocol error",
		TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			if _, err := call.Detach(ctx); err != nil {
				return nil, err
			}
			return nil, schema.Errorf(schema.CodeInternalError, "the job hit a protocol error")
		})
	workers.AddTool(g, workers.Tool{Name: "confirm_delete", Description: "A task that asks for confirmation before deleting",
		TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, call *workers.Call, in FileArgs) (*schema.ToolResult, error) {
			ctx, err := call.Detach(ctx)
			if err != nil {
				return nil, err
			}
			got, err := askFor[schema.ElicitResult](ctx, call, askConfirm)
			if err != nil {
				return nil, err
			}
			if got.Action != "accept" {
				return workers.TextResult(in.Filename + " kept"), nil
			}
			return workers.TextResult(in.Filename + " deleted"), nil
		})
	workers.AddTool(g, workers.Tool{Name: "multi_input", Description: "A task that asks two questions at once",
		TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			ctx, err := call.Detach(ctx)
			if err != nil {
				return nil, err
			}
			got, err := call.AskAll(ctx, askName, askConfirm)
			if err != nil {
				return nil, err
			}
			return workers.TextResult(fmt.Sprintf("Got %d answers", len(got))), nil
		})
	workers.AddTool(g, workers.Tool{Name: "test_tool_with_task", Description: "Asks a name first, then works on as a task",
		TaskSupport: schema.TaskSupportRequired},
		func(ctx context.Context, call *workers.Call, _ NoArgs) (*schema.ToolResult, error) {
			got, err := askFor[schema.ElicitResult](ctx, call, askName)
			if err != nil {
				return nil, err
			}
			if _, err := call.Detach(ctx); err != nil {
				return nil, err
			}
			return workers.TextResult(fmt.Sprintf("Hello, %v!", got.Content["name"])), nil
		})
}
