package gateway_test

import (
	"context"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/gateway"
)

// spanNamed returns the last ended span called name, failing the test
// when there is none.
func spanNamed(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no span %q among %v", name, spanNames(rec.Ended()))
	}
	return found
}

// TestSpanResourceURI: a resources/read span is named "resources/read",
// not after its URI (the MCP conventions keep span names low-cardinality),
// and carries mcp.resource.uri; so do resources/subscribe and
// resources/unsubscribe, whose params name a URI too.
func TestSpanResourceURI(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	for _, method := range []string{"resources/read", "resources/subscribe", "resources/unsubscribe"} {
		wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"`+method+`","params":{"uri":"test://readme"}}`, hs...))
		s := spanNamed(t, rec, method)
		if got := stringAttr(s.Attributes(), "mcp.resource.uri"); got != "test://readme" {
			t.Errorf("%s span mcp.resource.uri %q, want test://readme", method, got)
		}
	}
	for _, s := range rec.Ended() {
		if s.Name() == "resources/read test://readme" {
			t.Errorf("a span is named after the resource's URI: %q", s.Name())
		}
	}
}

// TestSpanNetwork: a request's span has the client's address and port
// and network.protocol.version as the conventions write it ("1.1", "2");
// the operation duration has network.protocol.version too.
func TestSpanNetwork(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, hs...))
	ping := spanNamed(t, rec, "ping")
	if got := stringAttr(ping.Attributes(), "network.protocol.version"); got != "1.1" {
		t.Errorf("ping span network.protocol.version %q, want 1.1", got)
	}
	if got := stringAttr(ping.Attributes(), "client.address"); got != "127.0.0.1" {
		t.Errorf("ping span client.address %q, want 127.0.0.1", got)
	}
	if port, err := strconv.Atoi(stringAttr(ping.Attributes(), "client.port")); err != nil || port <= 0 {
		t.Errorf("ping span client.port %q, want the client's port", stringAttr(ping.Attributes(), "client.port"))
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, dp := range histogram(t, rm, "mcp.server.operation.duration").DataPoints {
		if v, _ := dp.Attributes.Value("network.protocol.version"); v.AsString() != "1.1" {
			t.Errorf("operation duration %v: network.protocol.version %q, want 1.1", dp.Attributes.ToSlice(), v.AsString())
		}
	}
}

// TestInitializeSpanSession: the span of an initialize over Streamable
// HTTP has the id of the session it created.
func TestInitializeSpanSession(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	if got := stringAttr(spanNamed(t, rec, "initialize").Attributes(), "mcp.session.id"); got != hs[1] {
		t.Errorf("initialize span mcp.session.id %q, want the session it created, %q", got, hs[1])
	}
}

// TestSpanRequestIDEscaped: a string id with JSON escapes is recorded as
// the string it stands for.
func TestSpanRequestIDEscaped(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":"p\u0041\"q","method":"ping"}`, hs...))
	if got := stringAttr(spanNamed(t, rec, "ping").Attributes(), "jsonrpc.request.id"); got != `pA"q` {
		t.Errorf("jsonrpc.request.id %q, want %q", got, `pA"q`)
	}
}

// baggageSeen is a span processor that notes the baggage member "user" of
// the context each span starts in.
type baggageSeen struct {
	sdktrace.SpanProcessor
	seen map[string]string
}

func (b *baggageSeen) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	b.seen[s.Name()] = baggage.FromContext(parent).Member("user").Value()
}

// TestMetaBaggage: the baggage a client puts in params._meta (an
// unprefixed key, as SEP-414 has it) is in the context of the request's
// span, as its traceparent is.
func TestMetaBaggage(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	seen := &baggageSeen{SpanProcessor: rec, seen: map[string]string{}}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(seen)), Propagator: prop})
	hs := tg.initialize(t, "2025-11-25", `{}`)
	wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"_meta":{"traceparent":"00-`+metaTrace+`-`+metaParent+`-01","baggage":"user=alice"}}}`, hs...))
	if got := seen.seen["ping"]; got != "alice" {
		t.Errorf("the ping span's context has baggage user=%q, want alice", got)
	}
}

// TestNotificationSpan: a notification the client sends is a SERVER span
// too (the conventions' server span is for a request or a
// notification), without jsonrpc.request.id, and is recorded in
// mcp.server.operation.duration.
func TestNotificationSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	hs := tg.initialize(t, "2025-11-25", `{}`) // it sends notifications/initialized
	s := spanNamed(t, rec, "notifications/initialized")
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("notification span kind %v, want SERVER", s.SpanKind())
	}
	if got := stringAttr(s.Attributes(), "mcp.session.id"); got != hs[1] {
		t.Errorf("notification span mcp.session.id %q, want %q", got, hs[1])
	}
	if _, ok := attrOf(s.Attributes(), "jsonrpc.request.id"); ok {
		t.Error("a notification's span has jsonrpc.request.id")
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dp := range histogram(t, rm, "mcp.server.operation.duration").DataPoints {
		if v, _ := dp.Attributes.Value("mcp.method.name"); v.AsString() == "notifications/initialized" && dp.Count == 1 {
			found = true
		}
	}
	if !found {
		t.Error("no operation duration for notifications/initialized")
	}
}

func attrOf(attrs []attribute.KeyValue, key string) (attribute.Value, bool) {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}
