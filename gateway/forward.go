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
	"go.opentelemetry.io/otel/codes"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// forward sends a request that a worker group answers (tools/call,
// prompts/get, resources/read, completion/complete) to the group serving
// its tool, prompt, resource or template, and answers x with what comes
// back; the worker's notifications and requests about it go to x.out on
// the way. The call is admitted first (package admission): a session,
// principal or gateway at its cap is refused at once with 503. A
// stateless request whose client goes (its stream closed) is cancelled at
// the worker.
func (g *Gateway) forward(ctx context.Context, x *exchange) {
	ticket, err := g.admission.Admit(&x.sess.inflight, x.sess.Principal)
	if err != nil {
		x.out.fail(http.StatusServiceUnavailable, g.overloaded(refusalOf(err)))
		return
	}
	ran, expected := time.Duration(-1), time.Duration(0) // unknown until a worker answers
	var group string
	admitted := ticket.Admitted()
	defer func() {
		ended := time.Now()
		if ran >= 0 {
			// The estimate learns how far off it was; and the wait
			// expected behind the group's backlog is the group's
			// queueing, not the gateway's: its in-flight limit ignores it.
			g.loads.observe(group, expected, ended.Sub(admitted)-ran)
			ran += expected
		}
		ticket.Release(ran, ended)
	}()
	var envelope schema.Envelope
	env := &envelope
	dest, rpcErr := g.envelope(x, env, admitted)
	if rpcErr != nil {
		status := 0
		if rpcErr.Code == schema.CodeOverloaded { // no live replica: try again soon
			status = http.StatusServiceUnavailable
		}
		x.out.fail(status, rpcErr)
		return
	}
	group = dest.group
	var ok bool
	if expected, ok = g.withinGroupQueue(x, group, g.reg.Load().QueueTarget(env.Method, env.Name), admitted); !ok {
		return
	}
	w := g.router.register(env.Key)
	defer g.router.unregister(env.Key, w)

	rep, rpcErr, refused := g.publishAndWait(ctx, dest, env, w, x.out)
	switch {
	case refused:
		x.out.fail(http.StatusServiceUnavailable, rpcErr)
		return
	case rpcErr == errShutDown:
		// Its client is told to try again: the worker should stop, so that
		// the call tried again does not run beside this one.
		g.cancelAtWorker(env, "the gateway shut down")
		x.out.fail(http.StatusServiceUnavailable, rpcErr)
		return
	case rpcErr != nil:
		if x.stateless && errors.Is(ctx.Err(), context.Canceled) {
			// A stateless request's client closed its stream: that is its
			// cancellation, and the worker should stop.
			g.cancelAtWorker(env, "the client closed the request's stream")
		}
		x.out.fail(0, rpcErr)
		return
	}
	ran = time.Duration(rep.RunNs)
	if rep.Error != nil {
		x.out.fail(0, rep.Error)
		return
	}
	x.out.result(workerResult(rep.Result))
}

// destination is where an envelope goes: a group's partition, and its
// request subject (streams.RequestSubject); and where the stream's
// acknowledgement of its publish comes: ackSubject, the gateway's ack
// prefix then the envelope's key.
type destination struct {
	group      string
	partition  int
	subject    string
	ackSubject string
}

// envelope fills env, the envelope that carries x's request to the group
// serving it, with its deadline Config.CallTimeout after now, and returns
// where it goes: a session's requests share a partition, a stateless
// request's key spreads them. It returns -32602 for an unknown target or
// malformed params, -32002 for an unknown resource.
func (g *Gateway) envelope(x *exchange, env *schema.Envelope, now time.Time) (destination, *schema.Error) {
	sess, msg, snap := x.sess, x.msg, g.reg.Load()
	name, group, rawArgs, rawToken, rpcErr := target(snap, msg)
	if rpcErr != nil {
		return destination{}, rpcErr
	}
	var err error
	var args []byte
	if rawArgs != nil {
		if rawArgs[0] != '{' {
			return destination{}, schema.Errorf(schema.CodeInvalidParams, "tools/call arguments must be an object")
		}
		if args, err = schema.JSONToMsgpack(nil, rawArgs); err != nil {
			return destination{}, schema.Errorf(schema.CodeInvalidParams, "tools/call arguments: %v", err)
		}
	}
	var token []byte
	if rawToken != nil {
		if token, err = schema.JSONToMsgpack(nil, rawToken); err != nil {
			return destination{}, schema.Errorf(schema.CodeInvalidParams, "progressToken: %v", err)
		}
	}
	key, ackSubject := g.nextKey()
	*env = schema.Envelope{
		Key:       key,
		Method:    msg.Method,
		Name:      name,
		Params:    args,
		Session:   sess.id,
		Principal: sess.Principal,
		Revision:  sess.revision(),
		Deadline:  now.Add(g.cfg.CallTimeout).UnixNano(),
		Attempt:   1,
		ReplyTo:   g.replyTo,

		ProgressToken: token,
		RequestID:     string(msg.ID),
		ClientCaps:    sess.clientCaps(),
		RequestState:  sess.requestState,
	}
	if sess.inputResponses != nil {
		if env.InputResponses, err = schema.JSONToMsgpack(nil, sess.inputResponses); err != nil {
			return destination{}, schema.Errorf(schema.CodeInvalidParams, "inputResponses: %v", err)
		}
	}
	routing := sess.id
	if routing == "" {
		routing = env.Key
	}
	p := streams.Partition(routing, g.topo.Partitions)
	return destination{group, p, snap.requestSubject(group, p), ackSubject}, nil
}

// firstBackoff is the wait before a failed publish is tried again the
// first time; it doubles up to a second.
const firstBackoff = 50 * time.Millisecond

// publishAndWait puts env on the stream, retrying with backoff while no
// stream leader answers (a leader election takes seconds), then waits for
// the reply, passing notes to out, until env's deadline (-32001) or ctx's
// end (its client gone). The Nats-Msg-Id header makes a retried publish a
// duplicate the stream drops, not a second request. It returns the reply,
// or the error to answer with; refused is set when a stream at its limits
// refused the request (an overload, HTTP 503).
//
// The deadline is a timer (w's, which serves request after request)
// rather than a context derived from ctx: a derived context registers
// with the request's and costs a call several allocations, and only the
// rare look in the result bucket needs one.
func (g *Gateway) publishAndWait(ctx context.Context, dest destination, env *schema.Envelope, w *waiter, out replier) (_ *schema.Reply, _ *schema.Error, refused bool) {
	expiry := w.expiryTimer(time.Until(env.DeadlineTime()))
	backoff := firstBackoff
	msgID, reruns := env.Key, 0
	subject := dest.subject
publish:
	for {
		m := nats.NewMsg(subject)
		span := g.obs.publishing(ctx, env, m.Header, dest)
		data, err := env.Marshal()
		if err != nil {
			return nil, schema.Errorf(schema.CodeInternalError, "encoding request"), false
		}
		m.Data = data
		m.Reply = dest.ackSubject
		w.msgID[0] = msgID
		m.Header[jetstream.MsgIDHeader] = w.msgID[:]
		elected := g.elections.wait(dest.partition)
		g.router.published(w, dest.partition)
		err = g.nc.PublishMsg(m)
		if span != nil {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
		for err == nil {
			// The stream's acknowledgement comes to the router, which
			// passes on only a refusal: waiting for a good one too would
			// wake this goroutine once more per call for nothing.
			var rep *schema.Reply
			var rpcErr *schema.Error
			if rep, rpcErr, err = g.wait(ctx, expiry.C, w, out); err == nil {
				return rep, rpcErr, false
			}
			if !errors.Is(err, errReplyMayBeLost) {
				break
			}
			err = nil
			if rep, notes := w.takeResult(nil); rep != nil {
				passNotes(notes, out)
				return rep, nil, false
			}
			rctx, cancel := context.WithDeadline(ctx, env.DeadlineTime())
			rep, rerun := g.recoverReply(rctx, env)
			cancel()
			switch {
			case rep != nil:
				_, notes, _ := w.take(nil)
				passNotes(notes, out)
				return rep, nil, false
			case rerun:
				// A new message id, or the stream would drop it.
				w.suspect.Store(false)
				reruns++
				msgID = env.Key + ".rerun" + strconv.Itoa(reruns)
				env.Attempt++
				g.repeats.Warn(ctx, g.log, "rerun", "reply may be lost across a reconnect, running the request again", "key", env.Key)
				continue publish
			}
		}
		if streams.IsStoreFailed(err) {
			return nil, g.overloaded(refusedStreamFull), true
		}
		if !streams.Retryable(err) {
			g.log.ErrorContext(ctx, "publishing request", "key", env.Key, "subject", subject, "err", err)
			return nil, schema.Errorf(schema.CodeInternalError, "could not queue the request"), false
		}
		stream := streams.StreamName(dest.partition)
		g.repeats.Warn(ctx, g.log, stream, "publish failed, retrying", "stream", stream, "key", env.Key, "attempt", env.Attempt, "err", err)
		select {
		case <-time.After(backoff):
			backoff = min(backoff*2, time.Second)
		case <-elected:
			// The new leader may take a moment to take publishes: try
			// again soon, as at first.
			backoff = firstBackoff
		case <-expiry.C:
			return nil, g.timedOut(), false
		case <-ctx.Done():
			return nil, g.ctxError(ctx), false
		case <-g.shutDown():
			return nil, errShutDown, false
		}
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

// passNotes passes on the notifications that arrived before the result,
// so the client sees them first.
func passNotes(notes []*schema.Reply, out replier) {
	for _, n := range notes {
		out.note(n)
	}
}

// wait waits for the result, the deadline (expired fires) or ctx's end,
// passing notifications on. The result can overtake the request's PubAck.
// A failed PubAck, or a suspicion that the reply was lost (w's error
// slot), ends the wait with that error for the caller to handle; the
// result wins if both are there.
func (g *Gateway) wait(ctx context.Context, expired <-chan time.Time, w *waiter, out replier) (*schema.Reply, *schema.Error, error) {
	var buf [noteBuffer]*schema.Reply
	for {
		select {
		case <-w.wake:
			rep, notes, err := w.take(buf[:0])
			passNotes(notes, out)
			switch {
			case rep != nil:
				return rep, nil, nil
			case err != nil:
				return nil, nil, err
			}
		case <-expired:
			return nil, g.timedOut(), nil
		case <-ctx.Done():
			return nil, g.ctxError(ctx), nil
		case <-g.shutDown():
			return nil, errShutDown, nil
		}
	}
}

// ctxError is the error that answers a request whose wait ctx ended: a
// deadline (-32001 with the timeout), or its client gone.
func (g *Gateway) ctxError(ctx context.Context) *schema.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return g.timedOut()
	}
	return schema.Errorf(schema.CodeRequestTimeout, "Request cancelled")
}

// timedOut answers a request whose deadline (Config.CallTimeout) passed.
func (g *Gateway) timedOut() *schema.Error {
	return schema.Errorf(schema.CodeRequestTimeout, "Request timed out after %s", g.cfg.CallTimeout)
}

// target finds the group that serves msg and what the envelope carries: the
// name (tool, prompt, resource URI or completion target), the arguments
// (JSON) and the progress token. Unknown targets are -32602, an unknown
// resource -32002.
func target(snap *Snapshot, msg *schema.Message) (name, group string, rawArgs, rawToken []byte, _ *schema.Error) {
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
			if group := snap.Unserved(name); group != "" {
				return "", "", nil, nil, noReplica("prompt", name, group)
			}
			return "", "", nil, nil, schema.Errorf(schema.CodeInvalidParams, "Unknown prompt: %s", name)
		}
		return name, p.Group, rawArgs, rawToken, nil
	}
	tool := snap.Tool(name)
	if tool == nil {
		if group := snap.Unserved(name); group != "" {
			return "", "", nil, nil, noReplica("tool", name, group)
		}
		return "", "", nil, nil, schema.Errorf(schema.CodeInvalidParams, "Unknown tool: %s", name)
	}
	return name, tool.Group, rawArgs, rawToken, nil
}

// noReplica answers a call to a tool or prompt whose worker group has no
// live replica (every heartbeat gone): at once, -32000 naming the group,
// HTTP 503 with Retry-After, rather than a wait until the call's deadline.
func noReplica(kind, name, group string) *schema.Error {
	data, _ := json.Marshal(struct {
		Reason       string `json:"reason"`
		Group        string `json:"group"`
		RetryAfterMs int    `json:"retryAfterMs"`
	}{"no live replica", group, 1000})
	return &schema.Error{Code: schema.CodeOverloaded, Data: data,
		Message: fmt.Sprintf("worker group %s, which serves %s %s, has no live replica", group, kind, name)}
}
