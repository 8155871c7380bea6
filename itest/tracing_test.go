package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

// Span names across the processes (the gateway's SERVER span and the
// worker's handler span are both named "{mcp.method.name} {target}").
const (
	sendSpan    = "send mcp.req.{group}.{partition}"
	waitSpan    = "wait mcp.req.{group}.{partition}"
	processSpan = "process mcp.req.{group}.{partition}"
	clientSpan  = "client tools/call"
)

// clientTracer is the test clients' tracer: their spans go to o over
// OTLP/HTTP as soon as they end, as the service itest-client.
func clientTracer(t *testing.T, o *testkit.OTLP) trace.Tracer {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(o.HTTPEndpoint()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("itest-client"))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("itest")
}

// traceparent is the W3C traceparent of ctx's span.
func traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// connectNegotiated connects the official go-sdk client to endpoint,
// leaving it to negotiate the revision (its newest, stateless).
func connectNegotiated(ctx context.Context, t *testing.T, endpoint string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "itest-go-sdk", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// callWithMeta calls tool with the official go-sdk client, the trace
// context of ctx's span in params._meta, as MCP clients send it.
func callWithMeta(ctx context.Context, t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args, Meta: mcp.Meta{"traceparent": traceparent(ctx)}})
	if err != nil {
		t.Fatalf("go-sdk tools/call %s: %v", tool, err)
	}
	if res.IsError || len(res.Content) == 0 {
		t.Fatalf("go-sdk tools/call %s: %+v", tool, res)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// TestTraceAcrossProcesses runs NATS (dev), a gateway and a worker as
// separate processes, the gateway and the worker exporting OTLP to a
// receiver the test runs, configured by OTEL_* alone. A tools/call from
// the official go-sdk client with a traceparent in _meta, and one from a
// plain HTTP client with only the traceparent header, each make one trace
// whose root is the client's span: the gateway's SERVER span under it, the
// publish (PRODUCER) under that, the worker's queue wait and CONSUMER
// span under the publish, the handler under the CONSUMER span; no orphan,
// the MCP and messaging attributes set. The gateway also exports
// mcp.server.operation.duration and mcp.server.session.duration. Once
// over OTLP/HTTP, once over OTLP/gRPC.
func TestTraceAcrossProcesses(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) {
			o := testkit.StartOTLP(t)
			tracer := clientTracer(t, o)
			env := o.Env(protocol)
			dev, _, natsURL := startDev(t, true, "--examples", "0")
			w := startEnv(t, "worker", env, "worker", "--nats", natsURL, "--log-level", "warn")
			w.waitLine(workerRE, 30*time.Second)
			gw := startEnv(t, "gateway", env, "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn")
			endpoint := gw.waitLine(endpointRE, 30*time.Second)[1]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			// The official go-sdk client, the trace context in _meta.
			cs := connectNegotiated(ctx, t, endpoint)
			sctx, span := tracer.Start(ctx, clientSpan, trace.WithSpanKind(trace.SpanKindClient))
			if got := callWithMeta(sctx, t, cs, "echo", map[string]any{"text": "traced"}); got != "traced" {
				t.Fatalf("echo answered %q", got)
			}
			span.End()
			revision := cs.InitializeResult().ProtocolVersion
			checkCallTrace(t, o, span.SpanContext(), "echo", revision, "mcpstream-gateway", 1)
			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}

			// A plain HTTP client, the trace context in the header only.
			sid := initSession(t, endpoint)
			hctx, span := tracer.Start(ctx, clientSpan, trace.WithSpanKind(trace.SpanKindClient))
			r := post(t, endpoint, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}`,
				"Mcp-Session-Id", sid, "traceparent", traceparent(hctx))
			span.End()
			if r.status != http.StatusOK || !strings.Contains(string(r.body), `"sum":5`) {
				t.Fatalf("add: %d %s", r.status, r.body)
			}
			server := checkCallTrace(t, o, span.SpanContext(), "add", "2025-11-25", "mcpstream-gateway", 1)
			if got := server.Attributes["jsonrpc.request.id"]; got != "7" {
				t.Errorf("server span jsonrpc.request.id = %v, want 7", got)
			}
			if got := server.Attributes["mcp.session.id"]; got != sid {
				t.Errorf("server span mcp.session.id = %v, want the session %s", got, sid)
			}

			req, _ := http.NewRequest(http.MethodDelete, endpoint, nil)
			if r := do(t, req, "Mcp-Session-Id", sid); r.status != http.StatusNoContent { // the session ends
				t.Fatalf("DELETE: %d %s", r.status, r.body)
			}

			// The gateway's MCP metrics, over OTLP too.
			o.AwaitMetrics(30*time.Second, func(ms []testkit.Metric) bool {
				var calls, sessions bool
				for _, m := range ms {
					if m.Service() != "mcpstream-gateway" || m.Unit != "s" {
						continue
					}
					for _, p := range m.Points {
						switch {
						case m.Name == "mcp.server.operation.duration" && p.Attributes["mcp.method.name"] == "tools/call" &&
							p.Attributes["gen_ai.tool.name"] == "echo" && p.Attributes["mcp.protocol.version"] == revision && p.Count == 1:
							calls = true
						case m.Name == "mcp.server.session.duration" && p.Count >= 1:
							sessions = true
						}
					}
				}
				return calls && sessions
			})
			gw.stop()
			w.stop()
			dev.stop()
		})
	}
}

// TestTraceOfARedelivery kills the worker (SIGKILL) that holds a traced
// call; another worker gets it once the consumer's AckWait passes. The
// trace shows both deliveries under the one publish: the first one's
// queue wait with delivery count 1, exported by the killed worker before
// it died (its process span never ended, so it was never sent), the
// second's wait and process spans with delivery count 2, from the other
// worker, whose handler span answers the call.
func TestTraceOfARedelivery(t *testing.T) {
	o := testkit.StartOTLP(t)
	tracer := clientTracer(t, o)
	env := o.Env("http/protobuf")
	dev, endpoint, natsURL := startDevEnv(t, env, true, "--examples", "0", "--ack-wait", "2s")
	a := startEnv(t, "worker-a", env, "worker", "--nats", natsURL, "--log-level", "warn")
	a.waitLine(workerRE, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := connectNegotiated(ctx, t, endpoint)
	defer cs.Close()

	sctx, span := tracer.Start(ctx, clientSpan, trace.WithSpanKind(trace.SpanKindClient))
	answered := make(chan string, 1)
	go func() {
		res, err := cs.CallTool(sctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 1500},
			Meta: mcp.Meta{"traceparent": traceparent(sctx)}})
		switch {
		case err != nil:
			answered <- err.Error()
		case len(res.Content) == 0:
			answered <- fmt.Sprintf("%+v", res)
		default:
			answered <- res.Content[0].(*mcp.TextContent).Text
		}
	}()
	traceID := span.SpanContext().TraceID().String()
	o.Await(30*time.Second, func([]testkit.Span) bool {
		return len(deliveries(o.Trace(traceID), waitSpan, 1)) == 1
	})
	if code := a.signal(syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatal("worker A exited cleanly after SIGKILL")
	}
	b := startEnv(t, "worker-b", env, "worker", "--nats", natsURL, "--log-level", "warn")
	b.waitLine(workerRE, 30*time.Second)
	select {
	case got := <-answered:
		if got != "slept 1500 ms" {
			t.Fatalf("the redelivered call answered %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the call was not answered after its redelivery")
	}
	span.End()

	checkCallTrace(t, o, span.SpanContext(), "sleep", cs.InitializeResult().ProtocolVersion, "mcpstream", 2)
	all := o.Trace(traceID)
	waitA, waitB := deliveries(all, waitSpan, 1), deliveries(all, waitSpan, 2)
	if len(waitA) != 1 || len(waitB) != 1 {
		t.Fatalf("wait spans: %d of delivery 1, %d of delivery 2; want one each\n%s", len(waitA), len(waitB), testkit.Format(all))
	}
	if pa, pb := waitA[0].Resource["process.pid"], waitB[0].Resource["process.pid"]; pa != int64(a.cmd.Process.Pid) || pb != int64(b.cmd.Process.Pid) {
		t.Errorf("deliveries by pids %v then %v, want worker A (%d) then worker B (%d)", pa, pb, a.cmd.Process.Pid, b.cmd.Process.Pid)
	}
	if waitA[0].ParentSpanID != waitB[0].ParentSpanID {
		t.Errorf("the two deliveries descend from %s and %s, want the one publish", waitA[0].ParentSpanID, waitB[0].ParentSpanID)
	}
	if n := len(testkit.ByName(all, processSpan)); n != 1 {
		t.Errorf("%d process spans, want the second delivery's alone (the killed worker never ended its own)\n%s", n, testkit.Format(all))
	}
	b.stop()
	dev.stop()
}

// deliveries returns the spans named name, among spans, of delivery n
// (messaging.nats.message.delivery_count).
func deliveries(spans []testkit.Span, name string, n int64) []testkit.Span {
	var out []testkit.Span
	for _, s := range testkit.ByName(spans, name) {
		if s.Attributes["messaging.nats.message.delivery_count"] == n {
			out = append(out, s)
		}
	}
	return out
}

// checkCallTrace awaits the trace under client, the span of a client's
// tools/call of tool, answered by delivery number attempt, and checks its
// shape: client -> SERVER "tools/call {tool}" (by gatewayService) ->
// PRODUCER send -> queue wait and CONSUMER process (by mcpstream-worker) ->
// handler span "tools/call {tool}"; the client's span its only root, no
// orphan; the protocol revision the client negotiated, and a session id on
// the revisions that have sessions. It returns the SERVER span.
func checkCallTrace(t *testing.T, o *testkit.OTLP, client trace.SpanContext, tool, revision, gatewayService string, attempt int64) testkit.Span {
	t.Helper()
	traceID, name := client.TraceID().String(), "tools/call "+tool
	o.Await(30*time.Second, func([]testkit.Span) bool {
		tr := o.Trace(traceID)
		return len(testkit.ByName(tr, clientSpan)) == 1 && len(testkit.ByName(tr, name)) == 2 &&
			len(deliveries(tr, processSpan, attempt)) == 1 && len(deliveries(tr, waitSpan, attempt)) == 1
	})
	tr := o.Trace(traceID)
	t.Logf("the trace of %s:\n%s", name, testkit.Format(tr))
	if roots := testkit.Roots(tr); len(roots) != 1 || roots[0].SpanID != client.SpanID().String() {
		t.Errorf("roots %v, want the client's span alone", names(roots))
	}
	if orphans := testkit.Orphans(tr); len(orphans) != 0 {
		t.Errorf("orphan spans %v", names(orphans))
	}
	var server, handler testkit.Span
	for _, s := range testkit.ByName(tr, name) {
		if s.Kind == trace.SpanKindServer {
			server = s
		} else {
			handler = s
		}
	}
	producers := testkit.ByName(tr, sendSpan)
	process := deliveries(tr, processSpan, attempt)[0]
	wait := deliveries(tr, waitSpan, attempt)[0]
	switch {
	case server.SpanID == "" || server.ParentSpanID != client.SpanID().String() || server.Service() != gatewayService:
		t.Fatalf("server span %+v: want a SERVER span of %s under the client's", server, gatewayService)
	case len(producers) != 1 || producers[0].Kind != trace.SpanKindProducer || producers[0].ParentSpanID != server.SpanID:
		t.Fatalf("publish spans %+v: want one PRODUCER span under the server span", producers)
	case process.Kind != trace.SpanKindConsumer || process.ParentSpanID != producers[0].SpanID || process.Service() != "mcpstream-worker":
		t.Fatalf("process span %+v: want a CONSUMER span of mcpstream-worker under the publish", process)
	case wait.ParentSpanID != producers[0].SpanID || wait.Service() != "mcpstream-worker":
		t.Fatalf("wait span %+v: want a span of mcpstream-worker under the publish", wait)
	case handler.ParentSpanID != process.SpanID || handler.Service() != "mcpstream-worker":
		t.Fatalf("handler span %+v: want a span of mcpstream-worker under the process span", handler)
	}
	wantAttrs(t, "server", server.Attributes, map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": tool,
		"gen_ai.operation.name": "execute_tool", "mcp.protocol.version": revision, "network.transport": "tcp",
		"client.address": "127.0.0.1"})
	if v, _ := server.Attributes["jsonrpc.request.id"].(string); v == "" {
		t.Error("server span: no jsonrpc.request.id")
	}
	if sid, ok := server.Attributes["mcp.session.id"]; ok != schema.IsSessionRevision(revision) {
		t.Errorf("server span mcp.session.id %v on revision %s", sid, revision)
	}
	if _, failed := server.Attributes["error.type"]; failed {
		t.Errorf("server span error.type %v on a call that succeeded", server.Attributes["error.type"])
	}
	p := producers[0]
	wantAttrs(t, "publish", p.Attributes, map[string]any{"messaging.system": "nats", "messaging.operation.type": "send",
		"messaging.destination.template": "mcp.req.{group}.{partition}"})
	if g, ok := p.Attributes["messaging.consumer.group.name"]; ok {
		// The conventions give a consumer group to consumers' spans only.
		t.Errorf("publish: messaging.consumer.group.name %v on a PRODUCER span", g)
	}
	for _, s := range []testkit.Span{p, process} {
		if id, _ := s.Attributes["messaging.message.id"].(string); id == "" || id != p.Attributes["messaging.message.id"] {
			t.Errorf("%s: messaging.message.id %v, want the envelope key %v", s.Name, s.Attributes["messaging.message.id"], p.Attributes["messaging.message.id"])
		}
		part, _ := s.Attributes["messaging.destination.partition.id"].(string)
		if _, err := strconv.Atoi(part); err != nil {
			t.Errorf("%s: messaging.destination.partition.id %q", s.Name, part)
		}
	}
	wantAttrs(t, "process", process.Attributes, map[string]any{"messaging.system": "nats", "messaging.operation.type": "process",
		"messaging.destination.template": "mcp.req.{group}.{partition}", "messaging.consumer.group.name": streams.ConsumerName("demo")})
	wantAttrs(t, "handler", handler.Attributes, map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": tool})
	if wait.End.Before(wait.Start) || wait.End.After(process.Start) {
		t.Errorf("wait span from %v to %v, the process span from %v: want the wait to end as the delivery begins", wait.Start, wait.End, process.Start)
	}
	return server
}

func wantAttrs(t *testing.T, what string, attrs, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s span %s = %v, want %v", what, k, attrs[k], v)
		}
	}
}

func names(spans []testkit.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+" ("+s.Service()+")")
	}
	return out
}

// TestTracedTaskAndClientRequest, in one process with the OpenTelemetry
// SDK: a handler's request to the client (an elicitation the official
// client answers) is a CLIENT span under the handler's span; a task's run
// is its handler's span, with mcp.task.id, lasting until the task's work
// is done, in the trace of the call that started it.
func TestTracedTaskAndClientRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := newStack(t, gateway.Config{TracerProvider: tp})
	s.runGroup(t, examples.Conformance(), "slow_compute")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cs := connectOfficial(t, ctx, s.url, "itest-traced", &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "ada"}}, nil
		},
	})
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"}}); err != nil || res.IsError {
		t.Fatalf("test_elicitation: %v %+v", err, res)
	}

	created := statelessCall(t, s.url, "tools/call", "slow_compute", `"name":"slow_compute","arguments":{"seconds":0.3,"label":"traced"}`)
	var id string
	if json.Unmarshal(created["taskId"], &id) != nil || id == "" {
		t.Fatalf("tools/call answered %v, want a task", created)
	}
	awaitTask(t, s.url, id, "completed")

	var elicit, task sdktrace.ReadOnlySpan
	testkit.Eventually(t, "the elicitation's and the task's spans ended", 10*time.Second, func() bool {
		for _, sp := range rec.Ended() {
			switch {
			case sp.Name() == "elicitation/create":
				elicit = sp
			case sp.Name() == "tools/call slow_compute" && sp.SpanKind() == trace.SpanKindInternal && spanAttr(sp, "mcp.task.id") == id:
				task = sp
			}
		}
		return elicit != nil && task != nil
	})
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var starter sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		byID[sp.SpanContext().SpanID()] = sp
		if sp.Name() == "tools/call slow_compute" && sp.SpanKind() == trace.SpanKindServer {
			starter = sp
		}
	}
	if p := byID[elicit.Parent().SpanID()]; elicit.SpanKind() != trace.SpanKindClient || p == nil || p.Name() != "tools/call test_elicitation" || p.SpanKind() != trace.SpanKindInternal {
		t.Errorf("elicitation span: kind %v, parent %v; want a CLIENT span under the handler's", elicit.SpanKind(), p)
	}
	if starter == nil || task.SpanContext().TraceID() != starter.SpanContext().TraceID() {
		t.Errorf("the task's span is not in the trace of the tools/call that started it")
	}
	if d := task.EndTime().Sub(task.StartTime()); d < 300*time.Millisecond {
		t.Errorf("the task's span lasted %v, less than its 0.3 s of work", d)
	}
}

func spanAttr(sp sdktrace.ReadOnlySpan, key string) string {
	for _, a := range sp.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestBaggageReachesTheHandler: the W3C baggage a client sends, in
// params._meta (the official go-sdk client) or in the HTTP baggage header
// (a plain HTTP client), is in the context of the worker's handler, which
// runs in another connection's consumer: it travels in the envelope.
func TestBaggageReachesTheHandler(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := newStack(t, gateway.Config{TracerProvider: tp})
	g := workers.NewGroup("baggage")
	workers.AddTool(g, workers.Tool{Name: "tenant", Description: "Returns the baggage member tenant of its context."},
		func(ctx context.Context, _ *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			return &schema.ToolResult{Content: []schema.Content{{Type: "text", Text: "tenant=" + baggage.FromContext(ctx).Member("tenant").Value()}}}, nil
		})
	s.runGroup(t, g, "tenant")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cs := connectOfficial(t, ctx, s.url, "itest-baggage", nil)
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "tenant", Meta: mcp.Meta{"baggage": "tenant=acme,user=ada"}})
	if err != nil || res.IsError || len(res.Content) == 0 {
		t.Fatalf("tools/call tenant: %v %+v", err, res)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "tenant=acme" {
		t.Errorf("with baggage in _meta the handler saw %q, want tenant=acme", got)
	}

	sid := initSession(t, s.url)
	r := post(t, s.url, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"tenant"}}`,
		"Mcp-Session-Id", sid, "baggage", "tenant=globex")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `tenant=globex`) {
		t.Errorf("with baggage in the header: %d %s, want tenant=globex", r.status, r.body)
	}
	r = post(t, s.url, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"tenant"}}`, "Mcp-Session-Id", sid)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"tenant="`) {
		t.Errorf("without baggage: %d %s, want an empty tenant", r.status, r.body)
	}
}
