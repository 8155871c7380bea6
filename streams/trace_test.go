package streams_test

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/streams"
)

// TestHeaderCarrier: the W3C propagator writes traceparent and tracestate
// into NATS headers in lower case, whatever case it asks for, and reads
// them back whatever case another client wrote them in (nats.Header is
// case-sensitive).
func TestHeaderCarrier(t *testing.T) {
	prop := propagation.TraceContext{}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5},
		TraceFlags: trace.FlagsSampled, TraceState: must(trace.ParseTraceState("vendor=x"))})
	h := nats.Header{}
	prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), streams.HeaderCarrier(h))
	if h["traceparent"] == nil || h["tracestate"] == nil || len(h) != 2 {
		t.Fatalf("headers %v, want traceparent and tracestate in lower case", h)
	}
	if keys := streams.HeaderCarrier(h).Keys(); !slices.Contains(keys, "traceparent") || !slices.Contains(keys, "tracestate") {
		t.Errorf("keys %v", keys)
	}
	// Another client's casing.
	other := nats.Header{"TraceParent": h["traceparent"], "TRACESTATE": h["tracestate"]}
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), streams.HeaderCarrier(other)))
	if !got.Equal(trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: sc.SpanID(),
		TraceFlags: sc.TraceFlags(), TraceState: sc.TraceState(), Remote: true})) {
		t.Errorf("extracted %v from %v, want %v", got, other, sc)
	}
	if v := streams.HeaderCarrier(nats.Header{}).Get("traceparent"); v != "" {
		t.Errorf("empty headers gave %q", v)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
