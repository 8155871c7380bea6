package testkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestWorkerOnTheWire drives the test worker by hand, as a gateway would:
// its registry entries and heartbeat are in the registry bucket; an
// envelope published to its request subject reaches the handler with its
// arguments, and the handler's notification, request to the client (whose
// answer carries the session header) and result come back on the reply
// subject; an error is replied as the reply's error; a cancellation is
// reported on Cancels and ends the handler's context; Stop removes the
// heartbeat.
func TestWorkerOnTheWire(t *testing.T) {
	_, nc, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holding, cancelled := make(chan struct{}, 1), make(chan error, 1)
	w := testkit.StartWorker(t, nc, testkit.WorkerOptions{
		Group:     "wire",
		Topology:  streams.Topology{Partitions: 2},
		Tools:     []schema.Tool{{Name: "echo"}},
		Prompts:   []schema.Prompt{{Name: "hello"}},
		Resources: []schema.Resource{{URI: "test://a", Name: "a"}},
		Handle: func(ctx context.Context, c *testkit.Call) (any, error) {
			switch c.Env.Name {
			case "echo":
				if err := c.Notify(schema.NotificationProgress, map[string]any{"progressToken": c.ProgressToken(), "progress": 1}); err != nil {
					return nil, err
				}
				a, err := c.Ask(ctx, schema.MethodRootsList, struct{}{})
				if err != nil {
					return nil, err
				}
				return map[string]any{"args": c.Args, "session": a.Session, "roots": a.Message.Result}, nil
			case "hold":
				holding <- struct{}{}
				<-ctx.Done()
				cancelled <- context.Cause(ctx)
				return nil, nil
			}
			return nil, &schema.Error{Code: -32050, Message: "no such thing"}
		},
	})

	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Get(ctx, streams.ToolKey("echo"))
	if err != nil {
		t.Fatal(err)
	}
	var tool schema.ToolEntry
	if err := json.Unmarshal(e.Value(), &tool); err != nil || tool.Group != "wire" || tool.Version == "" || string(tool.InputSchema) != `{"type":"object"}` {
		t.Fatalf("tool entry %s (%v)", e.Value(), err)
	}
	for _, key := range []string{streams.PromptKey("hello"), streams.ResourceKey("test://a"), streams.HeartbeatKey("wire", "w1")} {
		if _, err := reg.Get(ctx, key); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}

	replies := make(chan *schema.Reply, 16)
	sub, err := nc.Subscribe("test.reply", func(m *nats.Msg) {
		if rep, err := schema.UnmarshalReply(m.Data); err == nil {
			replies <- rep
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	publish := func(key, name, requestID string, args []byte) {
		t.Helper()
		env := &schema.Envelope{Key: key, Method: schema.MethodToolsCall, Name: name, Session: "s1", RequestID: requestID,
			ReplyTo: "test.reply", Deadline: time.Now().Add(20 * time.Second).UnixNano()}
		if args != nil {
			env.Params, _ = schema.JSONToMsgpack(nil, args)
		}
		env.ProgressToken, _ = schema.JSONToMsgpack(nil, []byte(`"tok"`))
		b, _ := env.Marshal()
		if _, err := js.Publish(ctx, streams.RequestSubject("wire", streams.Partition("s1", 2)), b, jetstream.WithMsgID(key)); err != nil {
			t.Fatal(err)
		}
	}
	next := func(what string) *schema.Reply {
		t.Helper()
		select {
		case rep := <-replies:
			return rep
		case <-ctx.Done():
			t.Fatalf("no %s", what)
		}
		return nil
	}
	asJSON := func(b []byte) string {
		t.Helper()
		js, err := schema.MsgpackToJSON(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		return string(js)
	}

	publish("k1", "echo", "7", []byte(`{"x":1}`))
	if rep := next("notification"); rep.Kind != schema.ReplyNotification || rep.Key != "k1" || rep.Method != schema.NotificationProgress ||
		asJSON(rep.Result) != `{"progress":1,"progressToken":"tok"}` {
		t.Fatalf("notification %+v", rep)
	}
	req := next("request to the client")
	if req.Kind != schema.ReplyRequest || req.Method != schema.MethodRootsList {
		t.Fatalf("request %+v", req)
	}
	id, _ := json.Marshal(req.ID)
	subject, ok := streams.AnswerSubject(id)
	if !ok {
		t.Fatalf("request id %q names no answer subject", req.ID)
	}
	answer := nats.NewMsg(subject)
	answer.Header.Set(schema.HeaderSessionID, "s1")
	answer.Data = []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"roots":[]}}`)
	if err := nc.PublishMsg(answer); err != nil {
		t.Fatal(err)
	}
	if rep := next("result"); rep.Kind != schema.ReplyResult || rep.Error != nil ||
		asJSON(rep.Result) != `{"args":{"x":1},"roots":{"roots":[]},"session":"s1"}` {
		t.Fatalf("result %+v", rep)
	}

	publish("k2", "nothing", "8", nil)
	if rep := next("error"); rep.Key != "k2" || rep.Error == nil || rep.Error.Code != -32050 {
		t.Fatalf("error reply %+v", rep)
	}

	publish("k3", "hold", "9", nil)
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("the hold envelope did not reach its handler")
	}
	b, _ := (&schema.Cancel{Session: "s1", RequestID: "9", Reason: "test"}).Marshal()
	if err := nc.Publish(streams.CancelSubject, b); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cancelled:
		if err == nil || err.Error() != "cancelled: test" {
			t.Fatalf("handler's context ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the handler's context was not cancelled")
	}
	if c := <-w.Cancels(); c.Session != "s1" || c.RequestID != "9" || c.Reason != "test" {
		t.Fatalf("cancel %+v", c)
	}

	w.Stop()
	if _, err := reg.Get(ctx, streams.HeartbeatKey("wire", "w1")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("heartbeat after Stop: %v", err)
	}
}
