package workers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// TestLargeRequestsKeepTheConnection: a replica's pulls are bounded in
// bytes, not only in requests. Sixty requests of 1.5 MiB wait on one
// partition (90 MiB: more than the NATS server lets wait on one
// connection, 64 MiB, and more than nats.go lets wait on one
// subscription) when a replica with the default batch (128 requests here)
// starts: over TCP, every one is answered, without the server closing the
// replica's connection as slow and without a redelivery (AckWait is a
// minute, longer than the test waits).
func TestLargeRequestsKeepTheConnection(t *testing.T) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	gw, js := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return nats.Connect(emb.ClientURL()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topo, err := streams.Ensure(ctx, js, streams.Topology{Partitions: 1, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan *nats.Msg, 128)
	if _, err := gw.ChanSubscribe(streams.ReplySubject(gatewayID), replies); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal(map[string]string{"text": strings.Repeat("x", 3<<19)})
	params, err := schema.JSONToMsgpack(nil, args)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		env := schema.Envelope{Key: fmt.Sprintf("large-%d", i),
			Method: schema.MethodToolsCall, Name: "take", Params: params, Session: "s",
			Deadline: time.Now().Add(time.Minute).UnixNano(), ReplyTo: streams.ReplySubject(gatewayID)}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, streams.RequestSubject("large", 0), b); err != nil {
			t.Fatal(err)
		}
	}

	var disconnects atomic.Int32
	nc, err := nats.Connect(emb.ClientURL(), nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnects.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	g := workers.NewGroup("large")
	workers.AddTool(g, workers.Tool{Name: "take", Annotations: map[string]any{"readOnlyHint": true}},
		func(ctx context.Context, _ *workers.Call, in struct {
			Text string `json:"text"`
		}) (int, error) {
			time.Sleep(20 * time.Millisecond) // each held a while: the rest wait in the replica's pulls
			return len(in.Text), nil
		})
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(rctx, nc, workers.Options{Topology: topo, Logger: discard}) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	seen := map[string]bool{}
	wait := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case m := <-replies:
			rep, err := schema.UnmarshalReply(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Error != nil {
				t.Fatalf("%s: %v", rep.Key, rep.Error)
			}
			seen[rep.Key] = true
		case <-wait:
			t.Fatalf("%d of %d requests answered in 30s (the replica's connection closed %d times)", len(seen), n, disconnects.Load())
		}
	}
	if d := disconnects.Load(); d != 0 {
		t.Errorf("the replica's connection was closed %d times", d)
	}
	info, err := js.Consumer(ctx, streams.StreamName(0), streams.ConsumerName("large"))
	if err != nil {
		t.Fatal(err)
	}
	if info.CachedInfo().NumRedelivered != 0 {
		t.Errorf("%d requests redelivered, want none", info.CachedInfo().NumRedelivered)
	}
}

// TestResultTooLarge: a result larger than a message may be (the NATS
// server's max_payload, 16 MiB for the embedded server) is answered at
// once with -32603 naming the limit, long before the call's deadline (20
// s), which the gateway would otherwise wait out for a reply that never
// comes: for a tool that may run again, for one that may not (its
// answer stored), and for a task, which records it as its failure.
func TestResultTooLarge(t *testing.T) {
	h := newHarness(t)
	big := workers.TextResult(strings.Repeat("x", 17<<20))
	answer := func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) { return big, nil }
	g := workers.NewGroup("huge")
	workers.AddTool(g, workers.Tool{Name: "read", Annotations: map[string]any{"readOnlyHint": true}}, answer)
	workers.AddTool(g, workers.Tool{Name: "write"}, answer)
	workers.AddTool(g, workers.Tool{Name: "long", TaskSupport: schema.TaskSupportOptional},
		func(ctx context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			if _, err := c.Detach(ctx); err != nil {
				return nil, err
			}
			return big, nil
		})
	h.run(g, workers.Options{})
	tooLarge := func(what string, e *schema.Error) {
		t.Helper()
		if e == nil || e.Code != schema.CodeInternalError || !strings.Contains(e.Message, "max_payload") {
			t.Errorf("%s: error %v, want -32603 naming max_payload", what, e)
		}
	}
	for _, tool := range []string{"read", "write"} {
		k := h.call("huge", tool, map[string]any{})
		tooLarge(tool, h.await(k, 10*time.Second).Error)
	}
	k := h.key()
	h.publish("huge", h.taskEnvelope(k, "long", 20*time.Second))
	task := h.taskHandle(h.await(k, 10*time.Second))
	tooLarge("task", h.awaitTaskStatus(task.TaskID, schema.TaskFailed, 10*time.Second).Error)
}
