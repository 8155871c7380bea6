package examples

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// EchoIn is the input of the demo echo tool.
type EchoIn struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// AddIn is the input of the demo add tool.
type AddIn struct {
	A float64 `json:"a" jsonschema:"the first addend"`
	B float64 `json:"b" jsonschema:"the second addend"`
}

// AddOut is the structured output of the demo add tool.
type AddOut struct {
	Sum float64 `json:"sum"`
}

// SleepIn is the input of the demo sleep tool.
type SleepIn struct {
	Ms int `json:"ms" jsonschema:"how long to sleep, in milliseconds"`
}

// IncrementIn is the input of the demo increment tool.
type IncrementIn struct {
	By int64 `json:"by,omitempty" jsonschema:"what to add to the counter (default 1)"`
}

// IncrementOut is the structured output of the demo increment tool.
type IncrementOut struct {
	Total int64 `json:"total"`
}

// MaxSleep bounds the demo sleep tool.
const MaxSleep = 10 * time.Minute

// Demo returns the demo group: echo, add, sleep and increment. increment
// adds to a counter the group's replica keeps and returns the new total:
// a tool neither read-only nor idempotent, so the worker claims each call
// and stores its result in the result bucket (a redelivered call is
// answered from it, not counted twice), the path of every tool that
// changes something.
func Demo() *workers.Group {
	g := workers.NewGroup("demo")
	var counter atomic.Int64
	readOnly := map[string]any{"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}
	workers.AddTool(g, workers.Tool{Name: "echo", Description: "Returns its text argument as text content.", Annotations: readOnly},
		func(_ context.Context, _ *workers.Call, in EchoIn) (*schema.ToolResult, error) {
			return workers.TextResult(in.Text), nil
		})
	workers.AddTool(g, workers.Tool{Name: "add", Description: "Adds two numbers.", Annotations: readOnly},
		func(_ context.Context, _ *workers.Call, in AddIn) (AddOut, error) {
			return AddOut{Sum: in.A + in.B}, nil
		})
	workers.AddTool(g, workers.Tool{Name: "sleep", Description: "Sleeps for ms milliseconds, then says so.", Annotations: readOnly},
		func(ctx context.Context, _ *workers.Call, in SleepIn) (*schema.ToolResult, error) {
			d := time.Duration(in.Ms) * time.Millisecond
			if d < 0 || d > MaxSleep {
				return nil, fmt.Errorf("ms must be between 0 and %d", MaxSleep.Milliseconds())
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return workers.TextResult(fmt.Sprintf("slept %d ms", in.Ms)), nil
			case <-ctx.Done():
				return nil, fmt.Errorf("sleep interrupted: %w", ctx.Err())
			}
		})
	counts := map[string]any{"readOnlyHint": false, "idempotentHint": false, "destructiveHint": false, "openWorldHint": false}
	workers.AddTool(g, workers.Tool{Name: "increment", Description: "Adds by (default 1) to a counter and returns the new total; each call counts once.", Annotations: counts},
		func(_ context.Context, _ *workers.Call, in IncrementIn) (IncrementOut, error) {
			if in.By == 0 {
				in.By = 1
			}
			return IncrementOut{Total: counter.Add(in.By)}, nil
		})
	return g
}
