package workers

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// OpenTelemetry. With Options.TracerProvider, each delivery of an envelope
// is traced under the gateway's PRODUCER span, whose context the envelope
// carries (so a redelivery, or a replay, joins the same trace):
//
//   - "wait mcp.req.{group}.{partition}", from when the stream stored the
//     envelope to when this replica got it: the queue wait, with the
//     delivery count too, so that a delivery whose replica died before
//     it ended its process span is still seen;
//   - "process mcp.req.{group}.{partition}", a CONSUMER span for the whole
//     delivery, with its delivery count (messaging.nats.message.delivery_count)
//     and what became of it (answered from the result bucket, expired,
//     handed back);
//   - under it, "{mcp.method.name} {target}" around the handler, whose
//     context carries it, so a tool author's own spans nest under it; the
//     handler's progress and log notifications are its events, its requests
//     to the client CLIENT spans under it.

// scopeName is the instrumentation scope of the workers' traces.
const scopeName = "github.com/mcpstream/mcpstream/workers"

// tracing holds a running group's tracer; nil when Options.TracerProvider
// is not set.
type tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	group      string
}

func newTracing(o Options, group string) *tracing {
	if o.TracerProvider == nil {
		return nil
	}
	p := o.Propagator
	if p == nil {
		p = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return &tracing{tracer: o.TracerProvider.Tracer(scopeName), propagator: p, group: group}
}

// delivery starts the spans of one delivery of env, received on subject:
// the queue wait (ended at once) and the process span, which ctx gains.
// It returns the process span, nil when not tracing.
func (t *tracing) delivery(ctx context.Context, env *schema.Envelope, msg jetstream.Msg, attempt int) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	parent := t.propagator.Extract(ctx, env.Trace())
	subject := msg.Subject()
	partition := subject[strings.LastIndexByte(subject, '.')+1:]
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingDestinationName(subject),
		semconv.MessagingDestinationTemplate(streams.RequestSubjectTemplate),
		semconv.MessagingDestinationPartitionID(partition),
		semconv.MessagingConsumerGroupName(streams.ConsumerName(t.group)),
		semconv.MessagingMessageID(env.Key),
		semconv.MessagingMessageBodySize(len(msg.Data())),
		attribute.Int("messaging.nats.message.delivery_count", attempt),
	}
	now := time.Now()
	if md, err := msg.Metadata(); err == nil && !md.Timestamp.IsZero() && md.Timestamp.Before(now) {
		_, wait := t.tracer.Start(parent, "wait "+streams.RequestSubjectTemplate,
			trace.WithTimestamp(md.Timestamp), trace.WithAttributes(attrs...))
		wait.End(trace.WithTimestamp(now))
	}
	return t.tracer.Start(parent, "process "+streams.RequestSubjectTemplate, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(attrs,
			semconv.MessagingOperationName("process"), semconv.MessagingOperationTypeProcess)...))
}

// handler starts the span a handler runs in, under ctx: named
// "{mcp.method.name} {target}", the target a tool's or a prompt's name
// (a resource's URI is an attribute only).
func (t *tracing) handler(ctx context.Context, env *schema.Envelope) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	name := env.Method
	attrs := []attribute.KeyValue{semconv.McpMethodNameKey.String(env.Method)}
	if env.Name != "" {
		switch env.Method {
		case schema.MethodToolsCall:
			name += " " + env.Name
			attrs = append(attrs, semconv.GenAIToolName(env.Name), semconv.GenAIOperationNameExecuteTool)
		case schema.MethodPromptsGet:
			name += " " + env.Name
			attrs = append(attrs, semconv.GenAIPromptName(env.Name))
		case schema.MethodResourcesRead:
			// Not in the name: a URI would make span names unbounded.
			attrs = append(attrs, semconv.McpResourceURI(env.Name))
		}
	}
	if env.Session != "" {
		attrs = append(attrs, semconv.McpSessionID(env.Session))
	}
	if env.Revision != "" {
		attrs = append(attrs, semconv.McpProtocolVersion(env.Revision))
	}
	if env.TaskID != "" {
		attrs = append(attrs, attribute.String("mcp.task.id", env.TaskID))
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// handled ends a handler's span with what it answered: error.type is the
// JSON-RPC code of a protocol error, or tool_error for a tool result with
// isError.
func handled(span trace.Span, rep *schema.Reply) {
	if span == nil {
		return
	}
	switch {
	case rep == nil:
		span.SetStatus(codes.Error, "the handler panicked")
	case rep.Error != nil:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(rep.Error.Code)))
		span.SetStatus(codes.Error, rep.Error.Message)
	case schema.IsToolError(rep.Result):
		span.SetAttributes(semconv.ErrorTypeKey.String("tool_error"))
		span.SetStatus(codes.Error, "the tool failed (isError)")
	}
	span.End()
}

// event notes what became of a delivery on its process span (nil: not
// tracing).
func event(span trace.Span, what string) {
	if span != nil {
		span.AddEvent(what)
	}
}
