package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// ErrNoClient is returned by the requests to the client of a Call that is
// not serving an envelope (a Call made by hand, as in tests).
var ErrNoClient = errors.New("workers: the call has no client to ask")

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

// Request sends the client a request while the call is served and waits
// for its answer: params is encoded as JSON, and the answer's result is
// returned as JSON. The request goes on core NATS to the gateway holding the
// client, which relays it on the call's event stream; the client may answer
// through any gateway.
//
// It returns a *[ClientError] when the client answers with an error or the
// gateway cannot relay the request (the client declared no matching
// capability, or accepts no event stream: code -32601 or -32603), the
// context's error when ctx ends first (the call's deadline, or the client's
// cancellation), and [ErrNoClient] for a Call not made by a running group.
//
// A redelivered envelope runs its handler again, so a request made before a
// worker crashed may reach the client twice. In a stateless revision (no
// requests to the client) it is [Call.Ask] under a key made from the
// method and the question's order.
func (c *Call) Request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	if c.inputs != nil {
		return c.Ask(ctx, c.nextKey(method), method, params)
	}
	if c.r == nil {
		return nil, ErrNoClient
	}
	js, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encoding %s params: %w", method, err)
	}
	mp, err := schema.JSONToMsgpack(nil, js)
	if err != nil {
		return nil, fmt.Errorf("compacting %s params: %w", method, err)
	}
	return c.r.askClient(ctx, c.env, method, mp)
}

// Sample asks the client's model for a message (sampling/createMessage);
// the client must have declared the sampling capability.
func (c *Call) Sample(ctx context.Context, p *schema.CreateMessageParams) (*schema.CreateMessageResult, error) {
	return requestAs[schema.CreateMessageResult](ctx, c, schema.MethodSamplingCreateMessage, p)
}

// Elicit asks the user for input through the client (elicitation/create);
// the client must have declared the elicitation capability.
func (c *Call) Elicit(ctx context.Context, p *schema.ElicitParams) (*schema.ElicitResult, error) {
	return requestAs[schema.ElicitResult](ctx, c, schema.MethodElicitationCreate, p)
}

// ListRoots asks the client for its roots (roots/list); the client must have
// declared the roots capability.
func (c *Call) ListRoots(ctx context.Context) (*schema.ListRootsResult, error) {
	return requestAs[schema.ListRootsResult](ctx, c, schema.MethodRootsList, struct{}{})
}

func requestAs[T any](ctx context.Context, c *Call, method string, params any) (*T, error) {
	raw, err := c.Request(ctx, method, params)
	if err != nil {
		return nil, err
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decoding the client's answer to %s: %w", method, err)
	}
	return &out, nil
}

// askClient publishes a request to the client about env and waits on its
// answer subject. An answer counts if the gateway relaying it names env's
// session, or if it is a gateway's own refusal (schema.HeaderGatewayError).
func (r *runner) askClient(ctx context.Context, env *schema.Envelope, method string, params []byte) (json.RawMessage, error) {
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
			r.log.Warn("ignoring an answer from another session", "key", env.Key, "method", method)
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
