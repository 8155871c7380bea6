package workers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// ExampleAddTool defines a typed tool, serves its group on an embedded
// JetStream server and prints the input schema that gateways find for it in
// the registry: json tags name the properties, fields without omitempty are
// required and jsonschema tags describe them.
func ExampleAddTool() {
	type ForecastIn struct {
		City string `json:"city" jsonschema:"the city to forecast"`
		Days int    `json:"days,omitempty" jsonschema:"days ahead, 0 for today"`
	}
	type ForecastOut struct {
		Summary string `json:"summary"`
	}

	g := workers.NewGroup("weather")
	workers.AddTool(g, workers.Tool{Name: "forecast", Description: "Forecasts the weather in a city."},
		func(ctx context.Context, call *workers.Call, in ForecastIn) (ForecastOut, error) {
			if in.Days > 10 {
				return ForecastOut{}, fmt.Errorf("cannot forecast %d days ahead", in.Days) // an isError result
			}
			return ForecastOut{Summary: "sunny in " + in.City}, nil
		})

	dir, err := os.MkdirTemp("", "mcpstream-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- g.Run(ctx, nc, workers.Options{Ready: ready, Logger: slog.New(slog.DiscardHandler)})
	}()
	defer func() { cancel(); <-done }() // drain before the connection closes
	select {
	case <-ready:
	case err := <-done:
		fmt.Println(err)
		return
	}

	js, _ := jetstream.New(nc)
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := reg.Get(ctx, streams.ToolKey("forecast"))
	if err != nil {
		fmt.Println(err)
		return
	}
	var entry schema.ToolEntry
	if err := json.Unmarshal(e.Value(), &entry); err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	_ = json.Indent(&out, entry.InputSchema, "", "  ")
	fmt.Println(out.String())
	// Output:
	// {
	//   "type": "object",
	//   "properties": {
	//     "city": {
	//       "type": "string",
	//       "description": "the city to forecast"
	//     },
	//     "days": {
	//       "type": "integer",
	//       "description": "days ahead, 0 for today"
	//     }
	//   },
	//   "required": [
	//     "city"
	//   ],
	//   "additionalProperties": false
	// }
}
