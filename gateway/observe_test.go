package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/gateway"
)

// The client's trace context, in _meta and in the HTTP header.
const (
	metaTrace   = "0af7651916cd43dd8448eb211c80319c"
	metaParent  = "b7ad6b7169203331"
	headerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	headerSpan  = "00f067aa0ba902b7"
)

// TestTracedCall: with a tracer provider (the OpenTelemetry SDK), a
// tools/call is a SERVER span "tools/call hold" whose parent is the trace
// context in the request's _meta, with the HTTP header's as a link; its
// publish is a PRODUCER span under it, whose context the envelope carries
// to the worker; a JSON-RPC error marks the span failed with its code.
// With a meter provider, mcp.server.operation.duration is recorded with
// the MCP conventions' attributes and buckets, and
// mcp.server.session.duration once the session is deleted.
func TestTracedCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tg := newTestGateway(t, gateway.Config{TracerProvider: tp, MeterProvider: mp})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	body := `{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"hold","arguments":{},` +
		`"_meta":{"traceparent":"00-` + metaTrace + `-` + metaParent + `-01"}}}`
	done := tg.postAsync(context.Background(), body, append(hs, "traceparent", "00-"+headerTrace+"-"+headerSpan+"-01")...)
	held := tg.awaitHeld(t)
	envParent := held.call.Env.TraceParent
	held.release <- map[string]any{"content": []any{}}
	wantResult(t, await(t, done, "the held call's response"))
	wantError(t, tg.post(t, callBody(2, "fail", `{}`, ""), hs...), http.StatusOK, failError.Code)
	if r := tg.do(t, http.MethodDelete, tg.url, "", hs...); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", r.status)
	}

	var server, producer, failed sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "initialize":
			if v := stringAttr(s.Attributes(), "mcp.protocol.version"); v != "2025-11-25" {
				t.Errorf("initialize span mcp.protocol.version %q, want the negotiated 2025-11-25", v)
			}
		case "tools/call hold":
			server = s
		case "send mcp.req.{group}.{partition}":
			if producer == nil {
				producer = s
			}
		case "tools/call fail":
			failed = s
		}
	}
	if server == nil || producer == nil || failed == nil {
		t.Fatalf("spans %v: want tools/call hold, its send, tools/call fail", spanNames(rec.Ended()))
	}
	if server.SpanKind() != trace.SpanKindServer || server.SpanContext().TraceID().String() != metaTrace || server.Parent().SpanID().String() != metaParent {
		t.Errorf("server span: kind %v, trace %v, parent %v; want SERVER under the _meta context", server.SpanKind(), server.SpanContext().TraceID(), server.Parent().SpanID())
	}
	if l := server.Links(); len(l) != 1 || l[0].SpanContext.SpanID().String() != headerSpan || l[0].SpanContext.TraceID().String() != headerTrace {
		t.Errorf("server span links %v, want the HTTP header's context", l)
	}
	for key, want := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "hold",
		"gen_ai.operation.name": "execute_tool", "jsonrpc.request.id": "c1", "mcp.protocol.version": "2025-11-25",
		"mcp.session.id": hs[1], "network.transport": "tcp"} {
		if got := stringAttr(server.Attributes(), key); got != want {
			t.Errorf("server span %s = %q, want %q", key, got, want)
		}
	}
	if producer.SpanKind() != trace.SpanKindProducer || producer.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("producer span: kind %v, parent %v, want PRODUCER under the server span %v", producer.SpanKind(), producer.Parent().SpanID(), server.SpanContext().SpanID())
	}
	if want := "00-" + metaTrace + "-" + producer.SpanContext().SpanID().String() + "-01"; envParent != want {
		t.Errorf("the envelope's traceparent %q, want the producer span's %q", envParent, want)
	}
	if got := stringAttr(producer.Attributes(), "messaging.destination.template"); got != "mcp.req.{group}.{partition}" {
		t.Errorf("producer span destination template %q", got)
	}
	if failed.Status().Code != codes.Error || stringAttr(failed.Attributes(), "error.type") != "-32050" {
		t.Errorf("failed call's span: status %v, error.type %q; want Error, -32050", failed.Status(), stringAttr(failed.Attributes(), "error.type"))
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	ops := histogram(t, rm, "mcp.server.operation.duration")
	var call, fail bool
	for _, dp := range ops.DataPoints {
		if !slices.Equal(dp.Bounds, []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}) {
			t.Errorf("buckets %v, not the MCP conventions'", dp.Bounds)
		}
		if _, ok := dp.Attributes.Value("mcp.session.id"); ok {
			t.Error("mcp.session.id is a metric attribute")
		}
		method, _ := dp.Attributes.Value("mcp.method.name")
		tool, _ := dp.Attributes.Value("gen_ai.tool.name")
		errType, _ := dp.Attributes.Value("error.type")
		switch {
		case method.AsString() == "tools/call" && tool.AsString() == "hold" && errType.AsString() == "" && dp.Count == 1:
			call = true
		case method.AsString() == "tools/call" && tool.AsString() == "fail" && errType.AsString() == "-32050" && dp.Count == 1:
			fail = true
		}
	}
	if !call || !fail {
		t.Errorf("operation durations %+v: want one for the held call and one for the failed one", ops.DataPoints)
	}
	if sessions := histogram(t, rm, "mcp.server.session.duration"); len(sessions.DataPoints) != 1 || sessions.DataPoints[0].Count != 1 {
		t.Errorf("session durations %+v, want the deleted session's", sessions.DataPoints)
	}
}

func histogram(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Histogram[float64] {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				if m.Unit != "s" {
					t.Errorf("%s in %q, want seconds", name, m.Unit)
				}
				return m.Data.(metricdata.Histogram[float64])
			}
		}
	}
	t.Fatalf("no %s recorded", name)
	return metricdata.Histogram[float64]{}
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func stringAttr(attrs []attribute.KeyValue, key string) string {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestTracedRefusal: a request refused at the gateway's in-flight limit
// is a failed SERVER span too, with the 503, the JSON-RPC code and the
// refusal's reason.
func TestTracedRefusal(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tg := newTestGateway(t, gateway.Config{MaxInFlight: 1, TracerProvider: tp})
	a, b := tg.initialize(t, "2025-11-25", `{}`), tg.initialize(t, "2025-11-25", `{}`)
	held := tg.postAsync(context.Background(), callBody(2, "hold", `{}`, ""), a...)
	h := tg.awaitHeld(t)
	wantOverloaded(t, tg.post(t, callBody(3, "echo", `{"text":"x"}`, ""), b...))
	h.release <- map[string]any{"content": []any{}}
	wantResult(t, await(t, held, "the held call's response"))

	var refused sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "tools/call echo" {
			refused = s
		}
	}
	if refused == nil {
		t.Fatalf("spans %v: no tools/call echo", spanNames(rec.Ended()))
	}
	for key, want := range map[string]string{"error.type": "-32000", "http.response.status_code": "503",
		"mcpstream.refusal.reason": "gateway_limit"} {
		if got := stringAttr(refused.Attributes(), key); got != want {
			t.Errorf("refused span %s = %q, want %q", key, got, want)
		}
	}
	if refused.Status().Code != codes.Error {
		t.Errorf("refused span status %v, want Error", refused.Status())
	}
}
