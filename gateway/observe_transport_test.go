package gateway_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/gateway"
)

// TestTracedTransports: the legacy HTTP+SSE transport and a JSON-RPC
// batch make the same SERVER spans as a single Streamable HTTP request.
// Over HTTP+SSE, a request's span has the session (sessionId) and the
// transport's revision, 2024-11-05. In a batch, every request is its own
// span, whose parent is the context in its own _meta, with the POST's
// HTTP traceparent as a link, and its own jsonrpc.request.id.
func TestTracedTransports(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})

	t.Run("HTTP+SSE", func(t *testing.T) {
		c := openHTTPSSE(t, tg)
		c.initialize(`{}`)
		c.send(callBody(2, "echo", `{"text":"sse"}`, ""))
		if m := c.next("the echo result"); m.Error != nil {
			t.Fatalf("echo over HTTP+SSE: %v", m)
		}
		s := spanNamed(t, rec, "tools/call echo")
		if s.SpanKind() != trace.SpanKindServer {
			t.Errorf("span kind %v, want SERVER", s.SpanKind())
		}
		for key, want := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "echo",
			"mcp.session.id": c.session, "mcp.protocol.version": "2024-11-05", "jsonrpc.request.id": "2",
			"network.transport": "tcp", "network.protocol.name": "http"} {
			if got := stringAttr(s.Attributes(), key); got != want {
				t.Errorf("HTTP+SSE span %s = %q, want %q", key, got, want)
			}
		}
	})

	t.Run("batch", func(t *testing.T) {
		hs := tg.initialize(t, "2025-03-26", `{}`)
		parents := map[string]string{"b1": "1111111111111111", "b2": "2222222222222222"}
		var msgs []string
		for id, parent := range parents {
			msgs = append(msgs, `{"jsonrpc":"2.0","id":"`+id+`","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},`+
				`"_meta":{"traceparent":"00-`+metaTrace+`-`+parent+`-01"}}}`)
		}
		if r := tg.post(t, batchOf(msgs...), append(hs, "traceparent", "00-"+headerTrace+"-"+headerSpan+"-01")...); r.status != 200 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		seen := 0
		for _, s := range rec.Ended() {
			id := stringAttr(s.Attributes(), "jsonrpc.request.id")
			parent, ok := parents[id]
			if s.Name() != "tools/call echo" || !ok {
				continue
			}
			seen++
			if s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID().String() != parent || s.SpanContext().TraceID().String() != metaTrace {
				t.Errorf("batch request %s: kind %v, parent %v; want SERVER under its own _meta context %s", id, s.SpanKind(), s.Parent().SpanID(), parent)
			}
			if l := s.Links(); len(l) != 1 || l[0].SpanContext.SpanID().String() != headerSpan {
				t.Errorf("batch request %s: links %v, want the POST's traceparent", id, l)
			}
			if got := stringAttr(s.Attributes(), "mcp.protocol.version"); got != "2025-03-26" {
				t.Errorf("batch request %s: mcp.protocol.version %q", id, got)
			}
		}
		if seen != 2 {
			t.Errorf("%d spans for the batch's 2 requests (all: %v)", seen, spanNames(rec.Ended()))
		}
	})
}
