package workers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// ClientError is a JSON-RPC error answering a request to the client: the
// client's own, or the gateway's when it could not relay the request. It is
// not a *schema.Error, so a tool handler that returns it fails with a tool
// result (isError), not with a protocol error of the client's code.
type ClientError struct {
	Method string
	Code   int
	// Message and Data are the JSON-RPC error's.
	Message string
	Data    json.RawMessage
}

func (e *ClientError) Error() string {
	return fmt.Sprintf("%s: %s (code %d)", e.Method, e.Message, e.Code)
}

// askClient publishes a request to the client about env and waits on its
// answer subject. An answer counts if the gateway relaying it names env's
// session, or if it is a gateway's own refusal (schema.HeaderGatewayError).
func (r *runner) askClient(ctx context.Context, env *schema.Envelope, method string, params []byte) (_ json.RawMessage, err error) {
	if r.tracing != nil {
		var span trace.Span
		ctx, span = r.tracing.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.McpMethodNameKey.String(method)))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	id, subject := streams.NewClientRequest()
	sub, err := r.nc.SubscribeSync(subject)
	if err != nil {
		return nil, fmt.Errorf("%s: subscribing for the answer: %w", method, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The subscription is registered before the request leaves: both go
	// out on the same connection, in order.
	rep := &schema.Reply{Key: env.Key, Kind: schema.ReplyRequest, Method: method, Result: params, ID: id}
	if err := r.publish(env, rep); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return nil, fmt.Errorf("%s: waiting for the client's answer: %w", method, err)
		}
		if !answersFor(msg, env.Session) {
			r.log.WarnContext(ctx, "ignoring an answer from another session", "key", env.Key, "method", method)
			continue
		}
		m, rpcErr := schema.DecodeMessage(msg.Data)
		if rpcErr != nil || m.Kind() != schema.KindResponse {
			return nil, &ClientError{Method: method, Code: schema.CodeInvalidRequest, Message: "the answer is not a JSON-RPC response"}
		}
		if e := m.Error; e != nil {
			return nil, &ClientError{Method: method, Code: e.Code, Message: e.Message, Data: e.Data}
		}
		return m.Result, nil
	}
}

func answersFor(msg *nats.Msg, session string) bool {
	if msg.Header == nil {
		return false
	}
	return msg.Header.Get(schema.HeaderGatewayError) != "" || (session != "" && msg.Header.Get(schema.HeaderSessionID) == session)
}
