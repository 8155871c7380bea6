package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// handle is the group's workers.RawHandler: it forwards a client's request
// to a pooled connection, its params rebuilt around the upstream's own
// name for the tool or prompt, and returns the upstream's result as it
// is. What the upstream says about the request meanwhile (progress, log
// messages, requests to the client) goes to the client through call; when
// ctx ends first (the call's deadline, the client's cancellation) the
// upstream is told with notifications/cancelled.
//
// A request whose connection is lost before it is answered (the process
// crashed, or was recycled) is sent once more, on another connection,
// when running it twice does no harm: a tool annotated readOnlyHint or
// idempotentHint, prompts/get, resources/read and completion/complete.
// Otherwise the client gets a JSON-RPC error (-32603) saying so.
//
// A request of a client that speaks the stateless revision goes, when the
// upstream speaks it too, to a connection of the stateless pool
// (stateless.go) with the client's revision and capabilities in its _meta
// and the client's inputResponses and requestState as they came; the
// upstream's result, input_required ones included, comes back as it is.
// While that pool has no connection up and its last start failed (it is
// being started again), the request takes a session connection, as it
// does once the upstream said it does not speak the revision.
// A tool that supports tasks keeps the session path (mcpstream's task
// holds its state), and so does, over HTTP, a tool whose arguments are
// marked x-mcp-header (the server would want Mcp-Param headers the
// bridge does not write).
func (h *Host) handle(ctx context.Context, call *workers.Call, req workers.RawRequest) (json.RawMessage, error) {
	n := h.names.Load()
	var mk func(id int64) json.RawMessage
	// sessionOnly: the call takes a session connection whatever the
	// client's revision.
	again, sessionOnly := true, false
	switch req.Method {
	case schema.MethodToolsCall:
		t, ok := n.tools[req.Name]
		if !ok {
			return nil, schema.Errorf(schema.CodeInvalidParams, "Unknown tool: %s", req.Name)
		}
		again = t.idempotent
		sessionOnly = t.tasks || (t.headers && len(h.cfg.Command) == 0)
		if t.tasks {
			var err error
			if ctx, err = call.Detach(ctx); err != nil {
				return nil, fmt.Errorf("running %s as a task: %w", req.Name, err)
			}
		}
		token := call.ProgressToken() != nil
		mk = func(id int64) json.RawMessage {
			p := struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments,omitempty"`
				Meta      *progressMeta   `json:"_meta,omitempty"`
			}{Name: t.upstream, Arguments: req.Params}
			if token {
				p.Meta = &progressMeta{ProgressToken: id}
			}
			b, _ := json.Marshal(p)
			return b
		}
	case schema.MethodPromptsGet:
		up, ok := n.prompts[req.Name]
		if !ok {
			return nil, schema.Errorf(schema.CodeInvalidParams, "Unknown prompt: %s", req.Name)
		}
		b, _ := json.Marshal(struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments,omitempty"`
		}{up, req.Params})
		mk = fixed(b)
	case schema.MethodResourcesRead:
		b, _ := json.Marshal(struct {
			URI string `json:"uri"`
		}{req.Name})
		mk = fixed(b)
	case schema.MethodCompletionComplete:
		b, err := n.completeParams(req.Params)
		if err != nil {
			return nil, err
		}
		mk = fixed(b)
	default:
		return nil, schema.Errorf(schema.CodeMethodNotFound, "Method not found: %s", req.Method)
	}
	if schema.IsStateless(call.Revision) && !sessionOnly {
		if sp := h.statelessPool(); sp != nil {
			meta := h.statelessMeta(call)
			smk := func(id int64) json.RawMessage {
				m := meta
				if call.ProgressToken() != nil {
					m.ProgressToken = &id
				}
				return statelessParams(mk(id), m, req)
			}
			res, err := h.send(ctx, sp, call, req, smk, &relay{call: call, c: ctx, stateless: true}, again)
			if !errors.Is(err, errNoStateless) && !errors.Is(err, errStatelessDown) {
				if err != nil {
					return nil, err
				}
				return statelessResult(res), nil
			}
		}
	}
	return h.send(ctx, h.pool, call, req, mk, &relay{call: call, c: ctx}, again)
}

// send sends a request, its params made by mk, on a connection of p and
// returns the upstream's answer: its result, or its JSON-RPC error as a
// *schema.Error. A request whose connection is lost is sent once more on
// another when again is set.
func (h *Host) send(ctx context.Context, p *pool, call *workers.Call, req workers.RawRequest, mk func(int64) json.RawMessage, relay *relay, again bool) (json.RawMessage, error) {
	var last *conn
	for attempt := 1; ; attempt++ {
		k, err := p.pick(ctx, call.Session, last)
		if err != nil {
			return nil, err
		}
		res, err := k.roundTripWith(ctx, req.Method, mk, relay)
		var re *rpcError
		switch {
		case err == nil:
			return res, nil
		case errors.As(err, &re):
			return nil, &schema.Error{Code: int(re.e.Code), Message: re.e.Message, Data: re.e.Data}
		case errors.Is(err, errLost) && again && attempt == 1 && ctx.Err() == nil:
			h.log.Warn("upstream connection lost with a request in flight; sending it again", "method", req.Method, "name", req.Name, "key", call.Key, "err", err)
			last = k
			continue
		case errors.Is(err, errLost):
			not := ""
			if !again {
				not = fmt.Sprintf(" (not sent again: tool %s is neither readOnlyHint nor idempotentHint)", req.Name)
			}
			return nil, schema.Errorf(schema.CodeInternalError, "%s %s: the upstream connection was lost while the request was in flight%s: %v", req.Method, req.Name, not, err)
		case errors.Is(err, errBusy):
			return nil, schema.Errorf(schema.CodeInternalError, "%s %s: %v (at most %d each)", req.Method, req.Name, err, h.cfg.MaxPending)
		}
		return nil, err
	}
}

// progressMeta is the _meta of a forwarded call that asks for progress:
// the token is the request's own id on its connection, which tells the
// upstream's progress notifications apart.
type progressMeta struct {
	ProgressToken int64 `json:"progressToken"`
}

// fixed is a params maker for params that do not depend on the id.
func fixed(b []byte) func(int64) json.RawMessage {
	return func(int64) json.RawMessage { return b }
}

// completeParams rewrites completion/complete's params for the upstream:
// a prompt reference gets the upstream's name of the prompt, and the
// client's _meta is left out, as it is from the other methods' params:
// its progressToken would reach the upstream as it is, and the upstream's
// progress under it would be taken for that of the request with that id
// on the connection, another client's (mcpstream's progress tokens are
// its own ids); on a session connection its stateless revision's members
// would not fit either. Every other member is kept as it is.
func (n *nameMap) completeParams(params json.RawMessage) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, schema.Errorf(schema.CodeInvalidParams, "completion/complete params: %v", err)
	}
	delete(p, "_meta")
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(p["ref"], &ref); err != nil {
		return nil, schema.Errorf(schema.CodeInvalidParams, "completion/complete ref: %v", err)
	}
	var typ, name string
	_ = json.Unmarshal(ref["type"], &typ)
	_ = json.Unmarshal(ref["name"], &name)
	if typ == schema.RefPrompt {
		up, ok := n.prompts[name]
		if !ok {
			return nil, schema.Errorf(schema.CodeInvalidParams, "completion/complete: unknown prompt %s", name)
		}
		ref["name"], _ = json.Marshal(up)
		p["ref"], _ = json.Marshal(ref)
	}
	return json.Marshal(p)
}

// relay is what a forwarded request's upstream may do with its client.
type relay struct {
	call *workers.Call
	c    context.Context
	// stateless is set on a connection that speaks the stateless
	// revision, which has no requests to the client: the upstream asks
	// with an input_required result instead.
	stateless bool
}

func (r *relay) ctx() context.Context { return r.c }

// progress relays notifications/progress under the client's own token.
func (r *relay) progress(params json.RawMessage) {
	var p struct {
		Progress float64 `json:"progress"`
		Total    float64 `json:"total"`
		Message  string  `json:"message"`
	}
	if json.Unmarshal(params, &p) == nil {
		_ = r.call.Progress(p.Progress, p.Total, p.Message)
	}
}

// log relays notifications/message.
func (r *relay) log(params json.RawMessage) {
	var p struct {
		Level  string          `json:"level"`
		Logger string          `json:"logger"`
		Data   json.RawMessage `json:"data"`
	}
	if json.Unmarshal(params, &p) == nil && p.Level != "" {
		_ = r.call.Log(p.Level, p.Logger, p.Data)
	}
}

// request relays a request of the upstream to the client, its params and
// answer as they are; the client's error comes back as the upstream's
// JSON-RPC error.
func (r *relay) request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if r.stateless {
		return nil, &rpcError{&jsonrpc.Error{Code: schema.CodeMethodNotFound,
			Message: fmt.Sprintf("mcpstream: %s: the stateless revision has no requests to the client (answer input_required instead)", method)}}
	}
	if len(params) == 0 {
		params = json.RawMessage(`{}`)
	}
	res, err := r.call.Request(ctx, method, params)
	var ce *workers.ClientError
	switch {
	case errors.As(err, &ce):
		return nil, &rpcError{&jsonrpc.Error{Code: int64(ce.Code), Message: ce.Message, Data: ce.Data}}
	case errors.Is(err, workers.ErrInputRequired):
		// The stateless revision: the call is answered input_required
		// with the question, and its retry carries the answer.
		return nil, &rpcError{&jsonrpc.Error{Code: schema.CodeInternalError, Message: "mcpstream: the client answers this in its retry (input required)"}}
	}
	return res, err
}
