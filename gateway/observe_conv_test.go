package gateway_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
