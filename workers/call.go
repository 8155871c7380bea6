package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
)

// Call describes the request a handler serves, and is how the handler
// talks to the client while it runs: notifications (Progress, Log),
// requests (Request, Sample, Elicit, ListRoots, Ask, AskAll), what the
// client declared (ClientCan, ClientCanExtension, RequireCapability),
// tasks (Detach) and resource updates (ResourceUpdated). A Call made by
// hand, as in tests, has no client: its notifications go nowhere and its
// requests return [ErrNoClient].
type Call struct {
	// Key identifies the request end to end; it is stable across
	// redeliveries, so handlers can use it as an idempotency key.
	Key string
	// Session is the client's session id in the session revisions; empty
	// in the stateless one.
	Session string
	// Principal is who the gateway authenticated the client as; empty
	// without authentication.
	Principal string
	// Revision is the MCP protocol revision the client speaks.
	Revision string
	// Attempt is the delivery count of the envelope, from 1.
	Attempt int
	// Deadline is when the gateway stops waiting for the answer, and the
	// handler's context ends; zero for none.
	Deadline time.Time

	progressToken json.RawMessage
	// r and env are the runner serving the call and its envelope (nil for
	// a Call made by hand).
	r   *runner
	env *schema.Envelope
	// capsJSON caches the client's capabilities as JSON (from env).
	capsJSON []byte
	capsDone bool
	// taskSupport is the tool's Tool.TaskSupport.
	taskSupport string
	// handler is the name of the tool or prompt whose handler runs the
	// call, once found (the metrics' name label).
	handler string
	// inputs is set on a stateless revision's call that may answer
	// input_required (tools/call, prompts/get, resources/read).
	inputs *inputs
	// task is set once the call runs as a task.
	task *taskRun
	// held is the pool goroutine's slot holding the envelope (nil for a
	// Call made by hand), kept in progress until the task's deadline once
	// the call is detached.
	held *slot
	// span is the handler's span (nil when the group does not trace): the
	// notifications the handler sends are its events.
	span trace.Span
}

// newCall describes env to its handler.
func (r *runner) newCall(env *schema.Envelope, attempt int) *Call {
	call := &Call{Key: env.Key, Session: env.Session, Principal: env.Principal, Revision: env.Revision,
		Attempt: attempt, Deadline: env.DeadlineTime(), r: r, env: env}
	if len(env.ProgressToken) > 0 {
		if tok, err := schema.MsgpackToJSON(nil, env.ProgressToken); err == nil {
			call.progressToken = tok
		}
	}
	return call
}

// ProgressToken returns the client's progress token for this call as JSON,
// or nil when the client asked for no progress.
func (c *Call) ProgressToken() json.RawMessage { return c.progressToken }

// Progress tells the client how far the call has come (notifications/
// progress). It does nothing when the client sent no progress token. It
// returns an error only when the notification cannot be encoded or sent
// (the connection's error, wrapped).
func (c *Call) Progress(progress, total float64, message string) error {
	if c.progressToken == nil {
		return nil
	}
	return c.notify(schema.NotificationProgress, struct {
		ProgressToken json.RawMessage `json:"progressToken"`
		Progress      float64         `json:"progress"`
		Total         float64         `json:"total,omitempty"`
		Message       string          `json:"message,omitempty"`
	}{c.progressToken, progress, total, message})
}

// Log sends the client a log message (notifications/message) at level
// (debug, info, notice, warning, error, critical, alert, emergency); the
// gateway drops it if it is below the level the session set. logger may be
// empty; data is any JSON value. It returns an error only when the message
// cannot be encoded (data is not JSON-encodable) or sent.
func (c *Call) Log(level, logger string, data any) error {
	return c.notify(schema.NotificationMessage, struct {
		Level  string `json:"level"`
		Logger string `json:"logger,omitempty"`
		Data   any    `json:"data"`
	}{level, logger, data})
}

// notify sends a notification about this call to the gateway holding the
// client, on core NATS next to the reply.
func (c *Call) notify(method string, params any) error {
	if c.r == nil {
		return nil
	}
	js, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", method, err)
	}
	mp, err := schema.JSONToMsgpack(nil, js)
	if err != nil {
		return fmt.Errorf("compacting %s: %w", method, err)
	}
	if c.span != nil {
		c.span.AddEvent(method)
	}
	return c.r.publish(c.env, &schema.Reply{Key: c.Key, Kind: schema.ReplyNotification, Method: method, Result: mp})
}

// ErrNoClient is returned by the requests to the client, and by
// ResourceUpdated, of a Call that is not serving an envelope (a Call made
// by hand, as in tests).
var ErrNoClient = errors.New("workers: the call has no client to ask")

// Request sends the client a request while the call is served and waits
// for its answer: params is encoded as JSON, and the answer's result is
// returned as JSON. The request goes on core NATS to the gateway holding the
// client, which relays it on the call's event stream; the client may answer
// through any gateway.
//
// It returns a *[ClientError] when the client answers with an error or the
// gateway cannot relay the request (the client declared no matching
// capability, or accepts no event stream: code -32601 or -32603), the
// context's cause, wrapped, when ctx ends first (the call's deadline, the
// client's cancellation, [ErrDraining]), an error naming the method when
// params cannot be encoded or the request cannot be sent, and
// [ErrNoClient] for a Call not made by a running group.
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
// the client must have declared the sampling capability. It returns the
// errors of [Call.Request] (of [Call.Ask] in the stateless revision), and
// one naming the method for an answer it cannot decode; so do Elicit and
// ListRoots.
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

// Ask asks the client one question and returns its answer (JSON). In a
// session revision it is [Call.Request] (key unused), with its errors. In
// the stateless one it returns the answer the retry carries under key, or
// [ErrInputRequired] (return it from the handler); a question the client's
// capabilities rule out is a -32021 *schema.Error, a method that cannot be
// asked of the client or params that cannot be encoded an error naming
// it.
func (c *Call) Ask(ctx context.Context, key, method string, params any) (json.RawMessage, error) {
	got, err := c.AskAll(ctx, InputRequest{Key: key, Method: method, Params: params})
	if err != nil {
		return nil, err
	}
	return got[key], nil
}

// AskAll asks several questions at once (one round in a stateless
// revision) and returns the answers by key. It returns the errors of
// [Call.Ask]: [ErrInputRequired] while any question is open.
func (c *Call) AskAll(ctx context.Context, reqs ...InputRequest) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(reqs))
	if c.inputs == nil {
		for _, q := range reqs {
			a, err := c.Request(ctx, q.Method, q.Params)
			if err != nil {
				return nil, err
			}
			out[q.Key] = a
		}
		return out, nil
	}
	if c.inputs.err != nil {
		return nil, c.inputs.err
	}
	for _, q := range reqs {
		if capability := schema.ClientCapability(q.Method); capability == "" {
			return nil, fmt.Errorf("workers: %s cannot be asked of the client", q.Method)
		} else if !c.ClientCan(capability) {
			return nil, missingCapability(capability)
		}
	}
	open := false
	for _, q := range reqs {
		c.inputs.n++
		if a, ok := c.inputs.answers[q.Key]; ok && len(a) > 0 && a[0] == '{' {
			c.inputs.used[q.Key] = a
			out[q.Key] = a
			continue
		}
		params, err := json.Marshal(q.Params)
		if err != nil {
			return nil, fmt.Errorf("encoding %s params: %w", q.Method, err)
		}
		c.inputs.asked = append(c.inputs.asked, askedInput{q.Key, q.Method, params})
		open = true
	}
	if open {
		return nil, ErrInputRequired
	}
	return out, nil
}

// nextKey names a question asked without a key.
func (c *Call) nextKey(method string) string {
	n := 1
	if c.inputs != nil {
		n = c.inputs.n + 1
	}
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(method, "/", "-"), n)
}

// ClientCan reports whether the client declared capability ("sampling",
// "elicitation", "roots", ...).
func (c *Call) ClientCan(capability string) bool {
	return schema.HasCapability(c.clientCapabilities(), capability)
}

// ClientCapabilities returns the capabilities the client declared, as
// JSON (an object, as the client sent it), or nil when the gateway passed
// none (a Call made by hand).
func (c *Call) ClientCapabilities() json.RawMessage { return c.clientCapabilities() }

// clientCapabilities is the client's capabilities as JSON, decoded from
// the envelope on first use.
func (c *Call) clientCapabilities() []byte {
	if !c.capsDone && c.env != nil && len(c.env.ClientCaps) > 0 {
		c.capsJSON, _ = schema.MsgpackToJSON(nil, c.env.ClientCaps)
	}
	c.capsDone = true
	return c.capsJSON
}

// RequireCapability returns nil if the client declared capability, else the
// -32021 *schema.Error to return from the handler.
func (c *Call) RequireCapability(capability string) error {
	if c.ClientCan(capability) {
		return nil
	}
	return missingCapability(capability)
}

func missingCapability(capability string) *schema.Error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{capability: map[string]any{}}})
	return &schema.Error{Code: schema.CodeMissingClientCapability,
		Message: fmt.Sprintf("the client did not declare the %s capability", capability), Data: data}
}

// ClientCanExtension reports whether the client declared extension in its
// capabilities' extensions.
func (c *Call) ClientCanExtension(extension string) bool {
	return schema.HasExtension(c.clientCapabilities(), extension)
}

// Detach turns the call into a task (the tasks extension), when the client
// declared the extension for this request and the tool supports tasks
// (Tool.TaskSupport): the task is stored in the task bucket, the client is
// answered with its handle at once, and the handler goes on under the
// returned context, which the task's lifetime bounds and tasks/cancel
// cancels. What the handler then returns, or asks with [Call.Ask], becomes
// the task's state. Otherwise Detach returns ctx and the call stays an
// ordinary one. A task whose input arrives runs the handler again from the
// start; Detach then returns the task's context at once.
//
// It returns an error only when the task cannot be encoded or stored in
// the task bucket (the bucket's error, wrapped with the task's id).
func (c *Call) Detach(ctx context.Context) (context.Context, error) {
	if c.r == nil || c.env.Method != schema.MethodToolsCall {
		return ctx, nil
	}
	return c.r.detach(ctx, c.env, c, c.taskSupport)
}

// ResourceUpdated announces that the resource at uri changed (see the
// package function [ResourceUpdated]). It returns [ErrNoClient] for a Call
// not made by a running group.
func (c *Call) ResourceUpdated(uri string) error {
	if c.r == nil {
		return ErrNoClient
	}
	return ResourceUpdated(c.r.nc, uri)
}
