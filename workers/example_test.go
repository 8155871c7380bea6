package workers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

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

// ExampleGroup_Run serves a worker group on an embedded JetStream server
// and plays the gateway: it publishes one tools/call envelope to the
// group's request subject, on the partition its key routes to, and prints
// the reply that comes back on the envelope's ReplyTo subject.
func ExampleGroup_Run() {
	type GreetIn struct {
		Name string `json:"name"`
	}
	g := workers.NewGroup("greeter")
	workers.AddTool(g, workers.Tool{Name: "greet", Description: "Greets someone."},
		func(ctx context.Context, call *workers.Call, in GreetIn) (*schema.ToolResult, error) {
			return workers.TextResult("hello, " + in.Name), nil
		})

	dir, err := os.MkdirTemp("", "mcpstream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	// Serve the group until ctx is cancelled; Ready is closed once it is
	// registered and pulling.
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
		log.Fatal(err)
	}

	// The gateway's side: the recorded topology says how many partitions
	// there are; the reply comes back on core NATS.
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	topo, err := streams.Ensure(ctx, js, streams.Topology{})
	if err != nil {
		log.Fatal(err)
	}
	replies, err := nc.SubscribeSync(streams.ReplySubject("example-gateway"))
	if err != nil {
		log.Fatal(err)
	}
	args, err := schema.JSONToMsgpack(nil, []byte(`{"name":"Ada"}`))
	if err != nil {
		log.Fatal(err)
	}
	env := &schema.Envelope{
		Key:      "req-1",
		Method:   schema.MethodToolsCall,
		Name:     "greet",
		Params:   args,
		Deadline: time.Now().Add(10 * time.Second).UnixNano(),
		ReplyTo:  streams.ReplySubject("example-gateway"),
	}
	b, err := env.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	subject := streams.RequestSubject(g.Name(), streams.Partition(env.Key, topo.Partitions))
	if _, err := js.Publish(ctx, subject, b, jetstream.WithMsgID(env.Key)); err != nil {
		log.Fatal(err)
	}

	msg, err := replies.NextMsg(10 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := schema.UnmarshalReply(msg.Data)
	if err != nil {
		log.Fatal(err)
	}
	result, err := schema.MsgpackToJSON(nil, rep.Result)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", rep.Key, result)
	// Output:
	// req-1: {"content":[{"type":"text","text":"hello, Ada"}]}
}
