package examples

import (
	"context"
	"fmt"
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

// MaxSleep bounds the demo sleep tool.
const MaxSleep = 10 * time.Minute

// Demo returns the demo group: echo, add and sleep.
func Demo() *workers.Group {
	g := workers.NewGroup("demo")
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
	return g
}
