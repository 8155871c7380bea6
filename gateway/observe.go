package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/semconv/v1.41.0/mcpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// OpenTelemetry. With Config.TracerProvider, every request the gateway
// serves is a SERVER span named "{mcp.method.name} {target}" in the MCP
// semantic conventions' vocabulary, whose parent is the trace context the
// client put in params._meta (traceparent, tracestate), else its HTTP
// traceparent header (the other, when both differ, is a link); each publish
// of its envelope is a PRODUCER span under it, whose context travels in the
// envelope and in the NATS headers to the worker. With
// Config.MeterProvider, mcp.server.operation.duration and
// mcp.server.session.duration are recorded as the conventions define them.
// With neither, a request pays one branch.

// scopeName is the instrumentation scope of the gateway's telemetry.
const scopeName = "github.com/mcpstream/mcpstream/gateway"

// durationBuckets are the MCP conventions' bucket boundaries, in seconds.
var durationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// observer holds the gateway's instruments; nil when neither a tracer nor
// a meter provider is configured.
type observer struct {
	tracer     trace.Tracer // nil without a TracerProvider
	propagator propagation.TextMapPropagator
	operations mcpconv.ServerOperationDuration
	sessions   mcpconv.ServerSessionDuration
}

// newObserver builds the instruments of cfg's providers: nil, and no
// error, when it has neither.
func newObserver(cfg Config) (*observer, error) {
	if cfg.TracerProvider == nil && cfg.MeterProvider == nil {
		return nil, nil
	}
	o := &observer{propagator: cfg.Propagator}
	if cfg.TracerProvider != nil {
		o.tracer = cfg.TracerProvider.Tracer(scopeName, trace.WithInstrumentationVersion(Version))
	}
	var meter metric.Meter
	if cfg.MeterProvider != nil {
		meter = cfg.MeterProvider.Meter(scopeName, metric.WithInstrumentationVersion(Version))
	}
	var err error
	buckets := metric.WithExplicitBucketBoundaries(durationBuckets...)
	if o.operations, err = mcpconv.NewServerOperationDuration(meter, buckets); err != nil {
		return nil, err
	}
	if o.sessions, err = mcpconv.NewServerSessionDuration(meter, buckets); err != nil {
		return nil, err
	}
	return o, nil
}

// operation observes one request: it stands in for the transport's
// replier, noting how the request was answered, and end closes its span
// and records its duration.
type operation struct {
	replier
	o       *observer
	x       *exchange  // its session, once initialize made one, gives the revision
	span    trace.Span // nil without a tracer
	start   time.Time
	method  string
	attrs   []attribute.KeyValue // the duration's attributes
	errType string
	errMsg  string
	status  int // the HTTP status of an error answered with one
	// hadSession is set when the span got mcp.session.id at its start.
	hadSession bool
}

// begin starts observing x's request: ctx gains its SERVER span, and
// x.out is wrapped.
func (o *observer) begin(ctx context.Context, x *exchange) (context.Context, *operation) {
	method := x.msg.Method
	if methodOf(method) == methodOther {
		method = "other" // a metric label must not take any method a client sends
	}
	op := &operation{replier: x.out, o: o, x: x, start: time.Now(), method: method}
	x.out = op
	target, targetAttr := requestTarget(x.msg)
	op.attrs = append(op.attrs, semconv.NetworkTransportTCP, semconv.NetworkProtocolName("http"))
	if x.r != nil {
		op.attrs = append(op.attrs, semconv.NetworkProtocolVersion(httpVersion(x.r)))
	}
	if targetAttr.Valid() && targetAttr.Key != semconv.McpResourceURIKey {
		op.attrs = append(op.attrs, targetAttr)
	}
	if method == schema.MethodToolsCall {
		op.attrs = append(op.attrs, semconv.GenAIOperationNameExecuteTool)
	}
	if o.tracer == nil {
		return ctx, op
	}
	parent, links := o.parent(ctx, x)
	name := method
	if target != "" {
		name += " " + target
	}
	attrs := append([]attribute.KeyValue{semconv.McpMethodNameKey.String(method)}, op.attrs...)
	if targetAttr.Key == semconv.McpResourceURIKey {
		attrs = append(attrs, targetAttr)
	}
	if id := x.msg.ID; len(id) > 0 {
		attrs = append(attrs, semconv.JSONRPCRequestID(jsonRPCID(id)))
	}
	if x.sess != nil && x.sess.id != "" {
		attrs = append(attrs, semconv.McpSessionID(x.sess.id))
		op.hadSession = true
	}
	if x.r != nil {
		if host, port, err := net.SplitHostPort(x.r.RemoteAddr); err == nil {
			attrs = append(attrs, semconv.ClientAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ClientPort(p))
			}
		}
	}
	ctx, op.span = o.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
	return ctx, op
}

// parent is the context a request's span descends from: the trace context
// in its params._meta, else its HTTP traceparent, with the other as a link
// when both are there and differ; and the W3C baggage of _meta, else of
// the header, whether a trace context came or not.
func (o *observer) parent(ctx context.Context, x *exchange) (context.Context, []trace.Link) {
	meta, _ := schema.ParseRequestMeta(x.msg.Params)
	metaCtx := o.propagator.Extract(ctx, meta.Trace())
	metaSC := trace.SpanContextFromContext(metaCtx)
	var httpCtx context.Context
	var httpSC trace.SpanContext
	if x.r != nil {
		httpCtx = o.propagator.Extract(ctx, propagation.HeaderCarrier(x.r.Header))
		httpSC = trace.SpanContextFromContext(httpCtx)
	}
	var links []trace.Link
	switch {
	case metaSC.IsValid() && httpSC.IsValid() && !metaSC.Equal(httpSC):
		ctx, links = metaCtx, []trace.Link{{SpanContext: httpSC}}
	case metaSC.IsValid():
		ctx = metaCtx
	case httpSC.IsValid():
		ctx = httpCtx
	}
	// Baggage comes with or without a trace context: _meta's, else the
	// header's.
	bag := baggage.FromContext(metaCtx)
	if bag.Len() == 0 && httpCtx != nil {
		bag = baggage.FromContext(httpCtx)
	}
	if bag.Len() > 0 && baggage.FromContext(ctx).Len() == 0 {
		ctx = baggage.ContextWithBaggage(ctx, bag)
	}
	return ctx, links
}

func (op *operation) result(body resultBody) {
	if body.msgpack && schema.IsToolError(body.b) {
		op.errType, op.errMsg = "tool_error", "the tool failed (isError)"
	}
	op.replier.result(body)
}

func (op *operation) fail(status int, e *schema.Error) {
	op.errType, op.errMsg, op.status = strconv.Itoa(e.Code), e.Message, status
	if reason, ok := refusalOfError(e); ok && op.span != nil {
		op.span.SetAttributes(refusalReasonKey.String(refusalNames[reason]))
	}
	op.replier.fail(status, e)
}

// refusalReasonKey names why the gateway refused a request (503): the
// reason label of mcpstream_gateway_refusals_total.
const refusalReasonKey = attribute.Key("mcpstream.refusal.reason")

// end closes the request's span and records its duration.
func (op *operation) end(ctx context.Context) {
	if sess := op.x.sess; op.span != nil && !op.hadSession && sess != nil && sess.id != "" {
		// An initialize over Streamable HTTP created it.
		op.span.SetAttributes(semconv.McpSessionID(sess.id))
	}
	if sess := op.x.sess; sess != nil && sess.client.Load() != nil {
		// Read at the end: an initialize has negotiated it by now.
		v := semconv.McpProtocolVersion(sess.revision())
		op.attrs = append(op.attrs, v)
		if op.span != nil {
			op.span.SetAttributes(v)
		}
	}
	if op.errType != "" {
		errAttrs := []attribute.KeyValue{semconv.ErrorTypeKey.String(op.errType)}
		if op.errType != "tool_error" {
			errAttrs = append(errAttrs, semconv.RPCResponseStatusCode(op.errType))
		}
		op.attrs = append(op.attrs, errAttrs...)
		if op.span != nil {
			op.span.SetAttributes(errAttrs...)
			op.span.SetStatus(codes.Error, op.errMsg)
		}
	}
	op.o.operations.Record(ctx, time.Since(op.start).Seconds(), mcpconv.MethodNameAttr(op.method), op.attrs...)
	if op.span == nil {
		return
	}
	if op.status != 0 {
		op.span.SetAttributes(semconv.HTTPResponseStatusCode(op.status))
	}
	op.span.End()
}

// requestTarget is what a request names, for its span's name, and the
// attribute that carries it: a tool (gen_ai.tool.name), a prompt
// (gen_ai.prompt.name) or the resource a resources/read, /subscribe or
// /unsubscribe names (mcp.resource.uri, with no name: the
// conventions keep a URI out of span names, whose cardinality it would
// make unbounded).
func requestTarget(msg *schema.Message) (string, attribute.KeyValue) {
	switch msg.Method {
	case schema.MethodToolsCall, schema.MethodPromptsGet:
		name, _, _, rpcErr := schema.ToolCall(msg.Params)
		if rpcErr != nil {
			return "", attribute.KeyValue{}
		}
		if msg.Method == schema.MethodPromptsGet {
			return name, semconv.GenAIPromptName(name)
		}
		return name, semconv.GenAIToolName(name)
	case schema.MethodResourcesRead, schema.MethodResourcesSubscribe, schema.MethodResourcesUnsubscribe:
		if uri, rpcErr := readParams(msg.Params); rpcErr == nil {
			return "", semconv.McpResourceURI(uri)
		}
	}
	return "", attribute.KeyValue{}
}

// httpVersion is r's HTTP version as network.protocol.version writes it:
// "1.1", "2", "3".
func httpVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 1:
		return "1." + strconv.Itoa(r.ProtoMinor)
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 3:
		return "3"
	}
	return strconv.Itoa(r.ProtoMajor)
}

// jsonRPCID is a JSON-RPC id as the conventions write it: a string's
// value (its escapes decoded), a number's text.
func jsonRPCID(id schema.ID) string {
	if len(id) >= 2 && id[0] == '"' {
		if bytes.IndexByte(id, '\\') >= 0 {
			var s string
			if json.Unmarshal(id, &s) == nil {
				return s
			}
		}
		return string(id[1 : len(id)-1])
	}
	return string(id)
}

// publishing starts the PRODUCER span of one publish of env to dest,
// under ctx, and writes its context into env and into h, the message's
// headers. It returns the span, nil when not tracing. (env and h are
// written through their carriers' own methods, not through the
// propagator's interface, so that without a tracer neither the envelope
// nor the message escapes to the heap.)
func (o *observer) publishing(ctx context.Context, env *schema.Envelope, h nats.Header, dest destination) trace.Span {
	if o == nil || o.tracer == nil {
		return nil
	}
	_, span := o.tracer.Start(ctx, "send "+streams.RequestSubjectTemplate, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(dest.subject),
			semconv.MessagingDestinationTemplate(streams.RequestSubjectTemplate),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(dest.partition)),
			semconv.MessagingMessageID(env.Key),
			attribute.Int("mcpstream.publish.attempt", int(env.Attempt)),
		))
	c := propagation.MapCarrier{}
	o.propagator.Inject(trace.ContextWithSpan(ctx, span), c)
	envelope, headers := env.Trace(), streams.HeaderCarrier(h)
	for k, v := range c {
		envelope.Set(k, v)
		headers.Set(k, v)
	}
	return span
}

// sessionEnded records the duration of a session that ended here.
func (o *observer) sessionEnded(ctx context.Context, sess *session) {
	if o == nil || sess.CreatedAt.IsZero() {
		return
	}
	o.sessions.Record(ctx, time.Since(sess.CreatedAt).Seconds(),
		semconv.McpProtocolVersion(sess.revision()), semconv.NetworkTransportTCP, semconv.NetworkProtocolName("http"))
}
