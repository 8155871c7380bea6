package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpstream/mcpstream/gateway"
)

// TestSpanOutcomes: a JSON-RPC error marks a request's span ERROR with
// the error's message as its description, error.type and
// rpc.response.status_code the code; a tool result with isError is
// error.type tool_error, ERROR, and no rpc.response.status_code; a
// prompts/get span is named after the prompt, with gen_ai.prompt.name and
// no gen_ai.operation.name (execute_tool is for tools/call only); a
// request with a null id is refused before any span is made.
func TestSpanOutcomes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tg := newTestGateway(t, gateway.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	wantError(t, tg.post(t, callBody(2, "fail", `{}`, ""), hs...), http.StatusOK, failError.Code)
	failed := spanNamed(t, rec, "tools/call fail")
	if failed.Status().Code != codes.Error || failed.Status().Description != failError.Message {
		t.Errorf("failed span status %+v, want Error %q", failed.Status(), failError.Message)
	}
	for key, want := range map[string]string{"error.type": "-32050", "rpc.response.status_code": "-32050"} {
		if got := stringAttr(failed.Attributes(), key); got != want {
			t.Errorf("failed span %s = %q, want %q", key, got, want)
		}
	}

	done := tg.postAsync(context.Background(), callBody(3, "hold", `{}`, ""), hs...)
	tg.awaitHeld(t).release <- map[string]any{"content": []any{}, "isError": true}
	wantResult(t, await(t, done, "the isError result"))
	toolErr := spanNamed(t, rec, "tools/call hold")
	if toolErr.Status().Code != codes.Error || stringAttr(toolErr.Attributes(), "error.type") != "tool_error" {
		t.Errorf("isError span: status %+v, error.type %q; want Error, tool_error", toolErr.Status(), stringAttr(toolErr.Attributes(), "error.type"))
	}
	if got := stringAttr(toolErr.Attributes(), "rpc.response.status_code"); got != "" {
		t.Errorf("isError span rpc.response.status_code %q, want none (no JSON-RPC error)", got)
	}

	wantResult(t, tg.post(t, `{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"greet","arguments":{"name":"a"}}}`, hs...))
	prompt := spanNamed(t, rec, "prompts/get greet")
	if got := stringAttr(prompt.Attributes(), "gen_ai.prompt.name"); got != "greet" {
		t.Errorf("prompts/get span gen_ai.prompt.name %q", got)
	}
	if got := stringAttr(prompt.Attributes(), "gen_ai.operation.name"); got != "" {
		t.Errorf("prompts/get span gen_ai.operation.name %q, want none", got)
	}

	if r := tg.post(t, `{"jsonrpc":"2.0","id":null,"method":"ping"}`, hs...); r.status == http.StatusOK && len(r.body) > 0 && decode(t, r.body).Error == nil {
		t.Errorf("a null id was served: %d %s", r.status, r.body)
	}
	for _, s := range rec.Ended() {
		if s.Name() == "ping" {
			t.Errorf("a span for the request with a null id: %v", s.Attributes())
		}
	}
}
