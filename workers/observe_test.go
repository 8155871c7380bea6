package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/internal/logging"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// TestDeliveryTraced: a delivery of an envelope carrying a trace context
// is traced under it, with the OpenTelemetry SDK: the queue wait and the
// CONSUMER process span are children of the envelope's span, the
// handler's span a child of the process span, and a span the handler
// makes from its context nests under that; a progress notification is an
// event of the handler's span, and a tool error marks it failed.
func TestDeliveryTraced(t *testing.T) {
	h := newHarness(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	g := workers.NewGroup("traced")
	type in struct {
		Fail bool `json:"fail,omitempty"`
	}
	workers.AddTool(g, workers.Tool{Name: "work"}, func(ctx context.Context, call *workers.Call, in in) (*schema.ToolResult, error) {
		_, own := tp.Tracer("tool").Start(ctx, "the tool's own span")
		own.End()
		if err := call.Progress(1, 2, "half"); err != nil {
			return nil, err
		}
		if in.Fail {
			return nil, errors.New("failed as asked")
		}
		return workers.TextResult("done"), nil
	})
	h.run(g, workers.Options{TracerProvider: tp})

	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:  trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}, TraceFlags: trace.FlagsSampled})
	for _, fail := range []bool{false, true} {
		k := h.key()
		env := h.envelope(k, "work", in{Fail: fail})
		env.TraceParent = "00-" + parent.TraceID().String() + "-" + parent.SpanID().String() + "-01"
		env.ProgressToken = []byte{0x07} // msgpack 7: the client asked for progress
		h.publish("traced", env)
		h.await(k, 10*time.Second)
	}
	// A delivery's span ends once it is acknowledged, after the reply.
	testkit.Eventually(t, "both deliveries' spans ended", 10*time.Second, func() bool { return len(rec.Ended()) == 8 })
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	process, handler, wait, own := byName["process mcp.req.{group}.{partition}"], byName["tools/call work"], byName["wait mcp.req.{group}.{partition}"], byName["the tool's own span"]
	if len(process) != 2 || len(handler) != 2 || len(wait) != 2 || len(own) != 2 {
		t.Fatalf("spans by name: %d process, %d handler, %d wait, %d own; want 2 of each (all: %v)", len(process), len(handler), len(wait), len(own), names(rec.Ended()))
	}
	ended := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		ended[sp.SpanContext().SpanID()] = sp
	}
	for _, p := range process {
		if p.SpanKind() != trace.SpanKindConsumer || p.Parent().SpanID() != parent.SpanID() || p.SpanContext().TraceID() != parent.TraceID() {
			t.Errorf("process span: kind %v, parent %v, trace %v", p.SpanKind(), p.Parent().SpanID(), p.SpanContext().TraceID())
		}
		if v, ok := attr(p.Attributes(), "messaging.nats.message.delivery_count"); !ok || v.AsInt64() != 1 {
			t.Errorf("process span delivery count %v", v)
		}
	}
	for _, w := range wait {
		if w.Parent().SpanID() != parent.SpanID() || !w.EndTime().After(w.StartTime()) {
			t.Errorf("wait span: parent %v, %v to %v", w.Parent().SpanID(), w.StartTime(), w.EndTime())
		}
	}
	for _, hs := range handler {
		if p := ended[hs.Parent().SpanID()]; p == nil || p.Name() != "process mcp.req.{group}.{partition}" {
			t.Errorf("handler span's parent %v is not a process span", hs.Parent().SpanID())
		}
		if v, _ := attr(hs.Attributes(), "gen_ai.tool.name"); v.AsString() != "work" {
			t.Errorf("handler span gen_ai.tool.name %q", v.AsString())
		}
		if ev := hs.Events(); len(ev) != 1 || ev[0].Name != schema.NotificationProgress {
			t.Errorf("handler span events %v, want the progress notification", ev)
		}
	}
	for _, o := range own {
		if h := ended[o.Parent().SpanID()]; h == nil || h.Name() != "tools/call work" {
			t.Errorf("the tool's own span is not under a handler span (parent %v)", o.Parent().SpanID())
		}
	}
	failed := 0
	for _, hs := range handler {
		if hs.Status().Code == codes.Error {
			failed++
			if v, _ := attr(hs.Attributes(), "error.type"); v.AsString() != "tool_error" {
				t.Errorf("failed handler span error.type %q, want tool_error", v.AsString())
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d handler spans failed, want the one whose tool returned an error", failed)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func attr(attrs []attribute.KeyValue, key string) (attribute.Value, bool) {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestLogsNameTheTrace: a line a worker logs about a delivery (here, its
// handler panicking) carries the delivery's trace_id and span_id, in the
// JSON format the commands use, and not the call's arguments.
func TestLogsNameTheTrace(t *testing.T) {
	h := newHarness(t)
	var out testkit.Buffer
	log, err := logging.New(&out, logging.FormatJSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	g := workers.NewGroup("logged")
	type in struct {
		Secret string `json:"secret"`
	}
	workers.AddTool(g, workers.Tool{Name: "boom"}, func(context.Context, *workers.Call, in) (*schema.ToolResult, error) {
		panic("boom")
	})
	h.run(g, workers.Options{TracerProvider: tp, Logger: log})
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	k := h.key()
	env := h.envelope(k, "boom", in{Secret: "ARG-SECRET-42"})
	env.TraceParent = "00-" + traceID + "-b7ad6b7169203331-01"
	h.publish("logged", env)
	h.await(k, 10*time.Second)

	var line map[string]any
	testkit.Eventually(t, "the panic logged", 10*time.Second, func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "handler panicked" {
				line = m
				return true
			}
		}
		return false
	})
	if line["trace_id"] != traceID || len(fmt.Sprint(line["span_id"])) != 16 || line["key"] != k {
		t.Errorf("the panic's line %v: want trace_id %s, a span_id and the key", line, traceID)
	}
	if strings.Contains(out.String(), "ARG-SECRET-42") {
		t.Errorf("the call's arguments were logged:\n%s", out.String())
	}
}

// TestResourceSpanName: the handler span of a resources/read is named
// "resources/read", not after the URI (the MCP conventions keep span
// names low-cardinality), and carries mcp.resource.uri.
func TestResourceSpanName(t *testing.T) {
	h := newHarness(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	g := workers.NewGroup("resources")
	workers.AddResource(g, schema.Resource{URI: "test://doc", Name: "doc"}, func(context.Context, *workers.Call, string, map[string]string) ([]schema.ResourceContents, error) {
		return []schema.ResourceContents{{URI: "test://doc", Text: "hi"}}, nil
	})
	h.run(g, workers.Options{TracerProvider: tp})
	k := h.key()
	env := h.envelope(k, "test://doc", nil)
	env.Method = schema.MethodResourcesRead
	h.publish("resources", env)
	h.await(k, 10*time.Second)
	var handler sdktrace.ReadOnlySpan
	testkit.Eventually(t, "the handler's span ended", 10*time.Second, func() bool {
		for _, s := range rec.Ended() {
			if v, ok := attr(s.Attributes(), "mcp.method.name"); ok && v.AsString() == schema.MethodResourcesRead {
				handler = s
				return true
			}
		}
		return false
	})
	if handler.Name() != "resources/read" {
		t.Errorf("handler span %q, want resources/read", handler.Name())
	}
	if v, _ := attr(handler.Attributes(), "mcp.resource.uri"); v.AsString() != "test://doc" {
		t.Errorf("handler span mcp.resource.uri %q, want test://doc", v.AsString())
	}
}

// TestNoSpanForPrefetched: a worker makes no span for an envelope it has
// pulled but not yet handed to a handler (the messaging conventions: no
// span for prefetched messages). With one handler busy, the envelopes
// behind it have no span started; each gets its own once it runs.
func TestNoSpanForPrefetched(t *testing.T) {
	h := newHarness(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	g := workers.NewGroup("prefetch")
	started, release := make(chan struct{}, 4), make(chan struct{})
	workers.AddTool(g, workers.Tool{Name: "block"}, func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
		started <- struct{}{}
		<-release
		return workers.TextResult("done"), nil
	})
	h.run(g, workers.Options{TracerProvider: tp, Concurrency: 1, Batch: 8})
	var keys []string
	for range 3 {
		k := h.key()
		keys = append(keys, k)
		h.publish("prefetch", h.envelope(k, "block", nil))
	}
	<-started
	time.Sleep(300 * time.Millisecond) // the pull has fetched the other two by now
	process := func(spans []sdktrace.ReadOnlySpan) (n int) {
		for _, s := range spans {
			if s.Name() == "process mcp.req.{group}.{partition}" {
				n++
			}
		}
		return n
	}
	var startedSpans []sdktrace.ReadOnlySpan
	for _, s := range rec.Started() {
		startedSpans = append(startedSpans, s)
	}
	if n := process(startedSpans); n != 1 {
		t.Errorf("%d process spans started while one handler runs and two envelopes wait, want 1", n)
	}
	close(release)
	for _, k := range keys {
		h.await(k, 10*time.Second)
	}
	testkit.Eventually(t, "three process spans ended", 10*time.Second, func() bool { return process(rec.Ended()) == 3 })
}
