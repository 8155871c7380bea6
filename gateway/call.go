package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// callTool routes a tools/call, prompts/get, resources/read or
// completion/complete to the group serving the tool, prompt, resource or
// template and waits for the reply, passing the worker's notifications and
// requests about it to note (which may be nil). It returns the result as
// msgpack, or a JSON-RPC error; a non-zero HTTP status means the request
// was refused for lack of room (503).
func (g *Gateway) callTool(ctx context.Context, sess *session, msg *schema.Message, note func(*schema.Reply)) ([]byte, *schema.Error, int) {
	name, group, rawArgs, rawToken, rpcErr := route(g.reg.Load(), msg)
	if rpcErr != nil {
		return nil, rpcErr, 0
	}
	var err error
	var args []byte
	if rawArgs != nil {
		if rawArgs[0] != '{' {
			return nil, schema.Errorf(schema.CodeInvalidParams, "tools/call arguments must be an object"), 0
		}
		if args, err = schema.JSONToMsgpack(nil, rawArgs); err != nil {
			return nil, schema.Errorf(schema.CodeInvalidParams, "tools/call arguments: %v", err), 0
		}
	}
	var token []byte
	if rawToken != nil {
		if token, err = schema.JSONToMsgpack(nil, rawToken); err != nil {
			return nil, schema.Errorf(schema.CodeInvalidParams, "progressToken: %v", err), 0
		}
	}

	// Admission: bounded in-flight per session, principal and gateway.
	// Nothing waits for room: the answer is immediate.
	release, err := g.admission.Admit(&sess.inflight, sess.Principal)
	if err != nil {
		g.metrics.refused(refusalOf(err))
		return nil, schema.OverloadedError(err.Error(), 1000), http.StatusServiceUnavailable
	}
	ran := time.Duration(-1)
	defer func() { release(ran) }()

	deadline := time.Now().Add(g.cfg.CallTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	env := &schema.Envelope{
		Key:       g.nextKey(),
		Method:    msg.Method,
		Name:      name,
		Params:    args,
		Session:   sess.id,
		Principal: sess.Principal,
		Revision:  sess.Revision,
		Deadline:  deadline.UnixNano(),
		Attempt:   1,
		ReplyTo:   g.replyTo,

		ProgressToken: token,
		RequestID:     string(msg.ID),
		ClientCaps:    sess.clientCaps(),
		RequestState:  sess.requestState,
	}
	if sess.inputResponses != nil {
		if env.InputResponses, err = schema.JSONToMsgpack(nil, sess.inputResponses); err != nil {
			return nil, schema.Errorf(schema.CodeInvalidParams, "inputResponses: %v", err), 0
		}
	}
	// A session's requests share a partition; a stateless request's key
	// spreads them.
	routing := sess.id
	if routing == "" {
		routing = env.Key
	}
	subject := streams.RequestSubject(group, streams.Partition(routing, g.topo.Partitions))
	w := g.router.register(env.Key)
	defer g.router.unregister(env.Key)

	rep, rpcErr, status := g.publishAndWait(ctx, subject, env, w, note)
	if rpcErr != nil {
		if sess.id == "" && errors.Is(ctx.Err(), context.Canceled) {
			// A stateless request's client closed its stream: that is its
			// cancellation, and the worker should stop.
			g.publishCancel(schema.Cancel{Session: schema.CancelByKey, RequestID: env.Key, Reason: "the client closed the request's stream"})
		}
		return nil, rpcErr, status
	}
	ran = time.Duration(rep.RunNs)
	if rep.Error != nil {
		return nil, rep.Error, 0
	}
	return rep.Result, nil, 0
}

// publishAndWait puts env on the stream, retrying with backoff while no
// stream leader answers (a leader election takes seconds), then waits for
// the reply. The Nats-Msg-Id header makes a retried publish a duplicate the
// stream drops, not a second request.
func (g *Gateway) publishAndWait(ctx context.Context, subject string, env *schema.Envelope, w *waiter, note func(*schema.Reply)) (*schema.Reply, *schema.Error, int) {
	backoff := 50 * time.Millisecond
	msgID, reruns := env.Key, 0
publish:
	for {
		data, err := env.Marshal()
		if err != nil {
			return nil, schema.Errorf(schema.CodeInternalError, "encoding request"), 0
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Reply = g.ackPrefix + env.Key
		m.Header.Set(jetstream.MsgIDHeader, msgID)
		g.router.published(w)
		err = g.nc.PublishMsg(m)
		for err == nil {
			// The stream's acknowledgement comes to the router, which
			// passes on only a refusal: waiting for a good one too would
			// wake this goroutine once more per call for nothing.
			var rep *schema.Reply
			var rpcErr *schema.Error
			if rep, rpcErr, err = g.wait(ctx, env, w, note, w.pubErr); err == nil {
				return rep, rpcErr, 0
			}
			if !errors.Is(err, errReplyMayBeLost) {
				break
			}
			err = nil
			select {
			case rep = <-w.result:
				g.drainNotes(w, note)
				return rep, nil, 0
			default:
			}
			rep, rerun := g.recoverReply(ctx, env)
			switch {
			case rep != nil:
				g.drainNotes(w, note)
				return rep, nil, 0
			case rerun:
				// A new message id, or the stream would drop it.
				w.suspect.Store(false)
				reruns++
				msgID = env.Key + ".rerun" + strconv.Itoa(reruns)
				env.Attempt++
				g.log.Warn("reply may be lost across a reconnect, running the request again", "key", env.Key)
				continue publish
			}
		}
		if streams.IsStoreFailed(err) {
			g.metrics.refused(refusedStreamFull)
			return nil, schema.OverloadedError("request stream full", 1000), http.StatusServiceUnavailable
		}
		if !streams.Retryable(err) {
			g.log.Error("publishing request", "key", env.Key, "subject", subject, "err", err)
			return nil, schema.Errorf(schema.CodeInternalError, "could not queue the request"), 0
		}
		g.log.Warn("publish failed, retrying", "key", env.Key, "attempt", env.Attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, g.ctxError(ctx, env), 0
		}
		backoff = min(backoff*2, time.Second)
		env.Attempt++
	}
}

// readParams reads the uri of resources/read params.
func readParams(params []byte) (string, *schema.Error) {
	var p struct {
		URI string `json:"uri"`
	}
	if len(params) == 0 || json.Unmarshal(params, &p) != nil || p.URI == "" {
		return "", schema.Errorf(schema.CodeInvalidParams, "resources/read needs params with a uri")
	}
	return p.URI, nil
}

// drainNotes passes on the notifications that arrived before the result,
// so the client sees them first.
func (g *Gateway) drainNotes(w *waiter, note func(*schema.Reply)) {
	for len(w.notes) > 0 {
		g.pass(<-w.notes, note)
	}
}

// pass gives a worker's notification or request to note. Without a note
// function (a call answered in a batch) notifications are dropped, and
// requests are refused so that the worker does not wait for nothing.
func (g *Gateway) pass(rep *schema.Reply, note func(*schema.Reply)) {
	switch {
	case note != nil:
		note(rep)
	case rep.Kind == schema.ReplyRequest:
		g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError, "%s: a call in a JSON-RPC batch has no event stream to send it on", rep.Method))
	}
}

// wait waits for the result or the deadline, passing notifications on. The
// result can overtake the request's PubAck. A failed PubAck, on pubErr,
// ends the wait with that error for the caller to handle.
func (g *Gateway) wait(ctx context.Context, env *schema.Envelope, w *waiter, note func(*schema.Reply), pubErr <-chan error) (*schema.Reply, *schema.Error, error) {
	for {
		select {
		case rep := <-w.result:
			g.drainNotes(w, note)
			return rep, nil, nil
		case n := <-w.notes:
			g.pass(n, note)
		case err := <-pubErr:
			return nil, nil, err
		case <-ctx.Done():
			return nil, g.ctxError(ctx, env), nil
		}
	}
}

func (g *Gateway) ctxError(ctx context.Context, env *schema.Envelope) *schema.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return schema.Errorf(schema.CodeRequestTimeout, "Request timed out after %s", g.cfg.CallTimeout)
	}
	return schema.Errorf(schema.CodeRequestTimeout, "Request cancelled")
}

// route finds the group that serves msg and what the envelope carries: the
// name (tool, prompt, resource URI or completion target), the arguments
// (JSON) and the progress token. Unknown targets are -32602, an unknown
// resource -32002.
func route(snap *Snapshot, msg *schema.Message) (name, group string, rawArgs, rawToken []byte, _ *schema.Error) {
	switch msg.Method {
	case schema.MethodCompletionComplete:
		p, rpcErr := schema.ParseCompleteParams(msg.Params)
		if rpcErr != nil {
			return "", "", nil, nil, rpcErr
		}
		if p.Ref.Type == schema.RefPrompt {
			if e := snap.Prompt(p.Ref.Name); e != nil {
				group = e.Group
			}
		} else if e := snap.Template(p.Ref.URI); e != nil {
			group = e.Group
		}
		if group == "" {
			return "", "", nil, nil, schema.Errorf(schema.CodeInvalidParams, "completion/complete: unknown %s", p.Ref)
		}
		return p.Target(), group, msg.Params, nil, nil
	case schema.MethodResourcesRead:
		uri, rpcErr := readParams(msg.Params)
		if rpcErr != nil {
			return "", "", nil, nil, rpcErr
		}
		if group = snap.ResourceGroup(uri); group == "" {
			return "", "", nil, nil, &schema.Error{Code: schema.CodeResourceNotFound, Message: "Resource not found",
				Data: json.RawMessage(fmt.Sprintf(`{"uri":%q}`, uri))}
		}
		return uri, group, nil, nil, nil
	}
	name, rawArgs, rawToken, rpcErr := schema.ToolCall(msg.Params)
	if rpcErr != nil {
		return "", "", nil, nil, rpcErr
	}
	if msg.Method == schema.MethodPromptsGet {
		p := snap.Prompt(name)
		if p == nil {
			return "", "", nil, nil, schema.Errorf(schema.CodeInvalidParams, "Unknown prompt: %s", name)
		}
		return name, p.Group, rawArgs, rawToken, nil
	}
	tool := snap.Tool(name)
	if tool == nil {
		return "", "", nil, nil, schema.Errorf(schema.CodeInvalidParams, "Unknown tool: %s", name)
	}
	return name, tool.Group, rawArgs, rawToken, nil
}
