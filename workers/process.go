package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// process runs one envelope: decode, drop if expired, go on with the task
// of a call delivered again that was detached into one that still works
// (and run no call again whose task ended: taskAgain), answer from the
// result store on redelivery, otherwise run the handler (holding it in
// held, the pool goroutine's slot, meanwhile); then store the result,
// reply, record the answer if the group records results, and acknowledge.
// Every path that handled the message acknowledges or terminates it, so
// nothing is redelivered that was handled. A message whose handler the
// drain deadline cancelled is handed back to the stream unanswered, for
// another replica (as onMsg does with those that had not started when the
// drain began). Each delivery's outcome is counted in the metrics.
func (r *runner) process(held *slot, msg jetstream.Msg, mayBeCopy bool) {
	r.metrics.handlerStarted()
	defer r.metrics.handlerDone()
	r.load.started()
	ran := time.Duration(-1) // a handler's run time, once it ran
	defer func() { r.load.ended(ran) }()
	env, err := schema.UnmarshalEnvelope(msg.Data())
	if err != nil {
		r.poison(msg, err.Error())
		return
	}
	attempt := 1
	if n, ok := deliveryCount(msg.Reply()); ok {
		attempt = int(n)
	}
	lctx, span := r.tracing.delivery(r.base, env, msg, attempt) // lctx: the delivery's logs name its trace
	if span != nil {
		defer span.End()
	}
	// A call detached into a task may come again: past its deadline,
	// or before it (its replica died, or drained). Its task goes on, or is
	// not run again (see taskAgain).
	own := env.TaskID == "" // the call's envelope, not a run of its task the gateway sent
	handled, resumed := r.taskAgain(lctx, span, msg, env, attempt)
	if handled {
		return
	}
	// A delivery again, or a copy the gateway published again (its
	// Attempt counts its publishes) that the stream stored a second time,
	// past its duplicate window: the result of a run is answered from the
	// bucket, not run again.
	if (attempt > 1 || env.Attempt > 1) && r.results != nil && !resumed { // a task's result is not stored there
		e, err := r.results.Get(r.base, streams.ResultKey(env.Key))
		if err == nil {
			if rep, err := schema.UnmarshalReply(e.Value()); err == nil {
				rep.Cached = true
				event(span, "answered from the result bucket")
				r.cached.Add(1)
				r.metrics.delivered(deliveredDuplicate)
				r.send(env, rep)
				_ = msg.Ack()
				return
			}
		} else if r.aborted() {
			r.handBack(msg, env.Key, "drain deadline passed reading the stored result")
			return
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !r.idempotent(env) && attempt < r.topo.MaxDeliver {
			// The bucket cannot say whether this already ran (its leader
			// is being elected): ask again later rather than run it twice.
			// The last delivery runs it: at least once, even if the bucket
			// stays unreadable.
			r.repeats.Warn(lctx, r.log, "reading stored result", "reading stored result, redelivery delayed", "key", env.Key, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}

	// A request that must not run twice, delivered again, published again
	// (by a gateway, or by a draining replica on its last delivery), or
	// held in this replica's buffers long enough for the server to have
	// redelivered it elsewhere, is claimed first: a copy another replica
	// runs, or ran, is not run here (see claim.go). So is a call's
	// envelope that goes on with its task: a copy a live replica holds
	// goes on there.
	claimed, handedBack := false, false
	if (mayBeCopy || attempt > 1 || env.Attempt > 1) && r.results != nil && own && !r.idempotent(env) {
		var handled bool
		if claimed, handled = r.claimRequest(lctx, span, msg, env, attempt); handled {
			return
		}
		if claimed {
			defer func() {
				if !handedBack {
					r.finishClaim(env)
				}
			}()
		}
	}
	// handBack returns the envelope to the stream unanswered, for another
	// replica to run at once: its claim released first, or the replica
	// the server gives it to could find it held, drop it, and wait
	// AckWait for it to come again.
	handBack := func(why string) {
		handedBack = true
		if claimed {
			r.releaseClaim(env)
		}
		r.handBack(msg, env.Key, why)
	}

	// The handler's context: under its slot's, which a cancellation ends
	// with a cause (the client's reason, or ErrDraining at the drain
	// deadline, which abort passes on), and ending at the envelope's
	// deadline (zero means "no deadline"), and when process returns.
	hctx := newHandlerContext(held.context(r.handlerRoot), env.DeadlineTime())
	defer hctx.end()
	var ctx context.Context = hctx
	if span != nil {
		// The delivery's span, and the request's baggage the envelope
		// carried, for the handler.
		ctx = baggage.ContextWithBaggage(trace.ContextWithSpan(ctx, span), baggage.FromContext(lctx))
	}
	key, cancellable := cancelKey(env) // by the client
	started := time.Now()
	held.hold(msg, env, started, claimed, key, cancellable)
	if cancellable {
		// Held before the look: a cancellation remembered after it finds
		// the slot (onCancel).
		if reason, ok := r.cancelled.reason(key); ok {
			// Cancelled while it waited here, or elsewhere before a
			// redelivery: the client wants no answer, and it is not run.
			held.release()
			event(span, "not run: cancelled by the client before it started")
			r.log.DebugContext(lctx, "dropping a request cancelled before it started", "key", env.Key, "reason", reason)
			r.expired.Add(1)
			r.metrics.delivered(deliveredExpired)
			_ = msg.Ack()
			return
		}
	}
	if r.aborted() { // the drain deadline passed before the slot's context was made
		held.abort(context.Cause(r.base))
	}
	rep, call := r.run(ctx, held, env, attempt)
	// Held until acknowledged: storing the result can take a leader
	// election, and the server must not redeliver meanwhile.
	defer held.release()
	ended := time.Now()
	ran = ended.Sub(started)
	r.metrics.ran(env.Method, call, ran)
	if rep != nil && r.aborted() && !r.finishedAnyway(env, call, rep) {
		// The drain deadline passed while the handler ran: it was
		// cancelled (or returned as it passed), so what it returned,
		// most likely its context's error, is not the request's answer.
		// Nothing is stored or sent: another replica runs it again.
		if call != nil && call.task != nil {
			call.task.cancel(context.Cause(r.base))
		}
		event(span, "handed back: cancelled at the drain deadline")
		handBack("cancelled at the drain deadline")
		return
	}
	if env.TaskID != "" || (call != nil && call.task != nil) {
		// A task: its outcome goes to the task bucket; the client, which
		// has its handle, polls for it.
		if rep == nil { // the handler panicked
			rep = panicked(env)
		}
		if err := r.finishTask(env, call, rep); err != nil {
			r.log.WarnContext(lctx, "recording the task's outcome", "key", env.Key, "err", err)
			if r.aborted() { // cut short by the drain deadline
				handBack("task outcome not recorded by the drain deadline")
				return
			}
		}
		r.metrics.delivered(outcome(attempt, rep))
		_ = msg.Ack()
		return
	}
	if rep == nil { // handler panicked: already replied and dead-lettered
		if r.record != nil { // the answer sent, with the run time
			p := panicked(env)
			p.RunNs = int64(ran)
			if b, err := p.Marshal(); err == nil {
				r.record.record(env.Key, b)
			}
		}
		r.metrics.delivered(outcome(attempt, rep))
		_ = msg.Ack()
		return
	}
	rep.RunNs = int64(ran)
	interim := call != nil && call.inputs != nil && len(call.inputs.asked) > 0
	if (ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrDraining)) || env.Expired(ended) {
		// The deadline passed while the handler ran (the gateway has
		// already answered the client with a timeout, so a result now would
		// race that answer), or the client cancelled the request (it wants
		// no response). Nothing is stored or sent. (A finished run that
		// the drain deadline cut short goes on: its answer is awaited.)
		r.expired.Add(1)
		r.metrics.delivered(deliveredExpired)
		_ = msg.Ack()
		return
	}
	r.processed.Add(1)
	r.metrics.delivered(outcome(attempt, rep))

	b, err := rep.Marshal()
	if err != nil {
		r.log.ErrorContext(lctx, "encoding reply", "key", env.Key, "err", err)
		rep = &schema.Reply{Key: env.Key, Error: schema.Errorf(schema.CodeInternalError, "encoding result failed")}
		b, _ = rep.Marshal()
	}
	// Reply, and store at once; acknowledge once the store has the
	// result, so a redelivery after a crash is answered from it, not run
	// again. Idempotent tools are simply run again.
	err = r.nc.Publish(env.ReplyTo, b)
	if errors.Is(err, nats.ErrMaxPayload) {
		// Neither the gateway nor the result bucket would get it: the
		// client is told now, rather than when its deadline passes. (The
		// client checks the size against the server's max_payload: a
		// reply that fits costs no look at it.)
		limit := r.nc.MaxPayload()
		r.log.WarnContext(lctx, "result too large to send", "key", env.Key, "bytes", len(b), "max_payload", limit)
		rep = &schema.Reply{Key: env.Key, Error: resultTooLarge(len(b), limit), RunNs: rep.RunNs}
		b, _ = rep.Marshal()
		err = r.nc.Publish(env.ReplyTo, b)
	}
	if err != nil {
		r.repeats.Warn(lctx, r.log, "replying", "replying", "key", env.Key, "err", err)
	}
	var stored jetstream.PubAckFuture
	var subject string
	store := r.results != nil && !r.idempotent(env) && !interim
	if store {
		subject = streams.ResultSubject(env.Key)
		if stored, err = r.js.PublishAsync(subject, b); err != nil {
			r.repeats.Warn(lctx, r.log, "storing result", "storing result", "key", env.Key, "err", err)
		}
	}
	r.record.record(env.Key, b) // if recording: the same bytes, not awaited
	if store {
		r.awaitStored(r.base, env, subject, b, stored)
	}
	_ = msg.Ack()
}

// awaitStored waits for the result bucket to acknowledge the result b of
// env, stored with the first future (nil if that publish failed at once),
// and stores it again with backoff while it is not: a bucket whose leader
// died with the write answers nothing. A redelivery finds the result there
// and is not run again. It gives up once env's deadline has passed, when a
// redelivery is dropped as expired anyway (a minute on, for an envelope
// with no deadline), and when ctx ends (the group's drain deadline).
func (r *runner) awaitStored(ctx context.Context, env *schema.Envelope, subject string, b []byte, stored jetstream.PubAckFuture) {
	deadline := env.DeadlineTime()
	if deadline.IsZero() {
		deadline = time.Now().Add(time.Minute)
	}
	timer := time.NewTimer(storeAckWait)
	defer timer.Stop()
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		if stored != nil {
			timer.Reset(storeAckWait)
			select {
			case <-stored.Ok():
				return
			case err := <-stored.Err():
				r.repeats.Warn(ctx, r.log, "storing result", "storing result", "key", env.Key, "err", err)
			case <-timer.C:
				r.repeats.Warn(ctx, r.log, "storing result", "storing result: no acknowledgement in time", "key", env.Key, "waited", storeAckWait)
			case <-ctx.Done():
				r.repeats.Warn(ctx, r.log, "result not stored", "result not stored", "key", env.Key, "err", context.Cause(ctx))
				return
			}
		}
		if time.Now().Add(backoff).After(deadline) {
			return
		}
		timer.Reset(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			r.repeats.Warn(ctx, r.log, "result not stored", "result not stored", "key", env.Key, "err", context.Cause(ctx))
			return
		}
		var err error
		if stored, err = r.js.PublishAsync(subject, b); err != nil {
			r.repeats.Warn(ctx, r.log, "storing result", "storing result", "key", env.Key, "err", err)
		}
	}
}

// storeAckWait is how long awaitStored waits for the result bucket to
// acknowledge one write before it writes again.
const storeAckWait = 2 * time.Second

// run dispatches env, held in slot held, to its handler and returns the
// reply, and the call it made (nil if it returned before); the reply is nil
// when the handler panicked (the panic is answered and dead-lettered here).
func (r *runner) run(ctx context.Context, held *slot, env *schema.Envelope, attempt int) (rep *schema.Reply, call *Call) {
	ctx, span := r.tracing.handler(ctx, env)
	defer func() { handled(span, rep) }() // after the recovery below
	defer func() {
		if p := recover(); p != nil {
			r.log.ErrorContext(ctx, "handler panicked", "key", env.Key, "method", env.Method, "name", env.Name,
				"panic", p, "stack", string(debug.Stack()))
			r.send(env, panicked(env))
			_ = r.deadLetter(env.Key, mustMarshal(env), fmt.Sprintf("handler panicked: %v", p)) // logged
			rep = nil
		}
	}()
	rep = &schema.Reply{Key: env.Key}
	// The arguments as JSON, for every handler but a typed tool's, which
	// makes it only if it needs it (toolArgs).
	var args []byte
	if env.Method != schema.MethodToolsCall {
		if args, rep.Error = jsonArgs(env.Params); rep.Error != nil {
			return rep, call
		}
	}
	call = r.newCall(env, attempt)
	call.span, call.held = span, held
	if rpcErr := r.prepareInputs(env, call); rpcErr != nil && !r.g.rawTarget(env) {
		// A raw handler may forward the request, requestState and all, to
		// a server whose state it is: Ask refuses it there (inputs.err).
		rep.Error = rpcErr
		return rep, call
	}
	var err error
	switch env.Method {
	case schema.MethodToolsCall:
		t := r.g.tool(env.Name)
		if t == nil {
			rep.Error = schema.Errorf(schema.CodeInvalidParams, "Unknown tool: %s", env.Name)
			return rep, call
		}
		call.taskSupport, call.handler = t.taskSupport, t.def.Name
		if env.TaskID != "" { // a task's run: under the task's context from the start
			if ctx, err = r.detach(ctx, env, call, t.taskSupport); err != nil {
				rep.Error = schema.Errorf(schema.CodeInternalError, "resuming task: %v", err)
				return rep, call
			}
		}
		if t.forward != nil {
			if args, rep.Error = jsonArgs(env.Params); rep.Error != nil {
				return rep, call
			}
			rep.Result, err = runRaw(ctx, call, t.forward, rawRequest(env, env.Name, args))
			break
		}
		var res *schema.ToolResult
		if res, err = t.handle(ctx, call, toolArgs{msgpack: env.Params}); err == nil {
			rep.Result, err = schema.AppendToolResult(nil, res)
		}
	case schema.MethodPromptsGet:
		p := r.g.prompt(env.Name)
		if p == nil {
			rep.Error = schema.Errorf(schema.CodeInvalidParams, "Unknown prompt: %s", env.Name)
			return rep, call
		}
		call.handler = p.def.Name
		if p.forward != nil {
			rep.Result, err = runRaw(ctx, call, p.forward, rawRequest(env, env.Name, args))
			break
		}
		var res *schema.PromptResult
		if res, err = p.get(ctx, call, args); err == nil {
			rep.Result, err = compact(res)
		}
	case schema.MethodResourcesRead:
		if h := r.g.rawReader(env.Name); h != nil {
			rep.Result, err = runRaw(ctx, call, h, rawRequest(env, env.Name, nil))
			break
		}
		var contents []schema.ResourceContents
		if contents, err = r.g.read(ctx, call, env.Name); err == nil {
			rep.Result, err = compact(schema.ReadResourceResult{Contents: contents})
		}
	case schema.MethodCompletionComplete:
		if h, target := r.g.rawCompleter(args); h != nil {
			rep.Result, err = runRaw(ctx, call, h, rawRequest(env, target, args))
			break
		}
		var res *schema.CompleteResult
		if res, err = r.g.complete(ctx, call, args); err == nil {
			rep.Result, err = compact(res)
		}
	default:
		rep.Error = schema.Errorf(schema.CodeMethodNotFound, "Method not found: %s", env.Method)
		return rep, call
	}
	if call.inputs != nil && len(call.inputs.asked) > 0 {
		// The handler asked the client something: answer input_required,
		// whatever it returned (most likely ErrInputRequired).
		rep.Error = nil
		if rep.Result, err = r.inputRequired(env, call.inputs); err == nil {
			return rep, call
		}
	}
	if err != nil {
		// A *schema.Error from a handler is a protocol error for the
		// client; anything else is an internal one.
		rep.Result = nil
		if !errors.As(err, &rep.Error) {
			rep.Error = schema.Errorf(schema.CodeInternalError, "%s %s: %v", env.Method, env.Name, err)
		}
	}
	return rep, call
}

// outcome is the delivery outcome of a run that ended with rep (nil when
// the handler panicked) on delivery attempt.
func outcome(attempt int, rep *schema.Reply) delivery {
	switch {
	case attempt > 1:
		return deliveredRedelivered
	case rep == nil || rep.Error != nil:
		return deliveredError
	}
	return deliveredOK
}

// cancelKey names env in the cancellations workers receive: a session's
// request by session and JSON-RPC id (notifications/cancelled), a stateless
// one by its key (the client closed its stream); false for neither.
func cancelKey(env *schema.Envelope) (cancelID, bool) {
	switch {
	case env.Session != "" && env.RequestID != "":
		return cancelID{env.Session, env.RequestID}, true
	case env.Session == "" && schema.IsStateless(env.Revision):
		return cancelID{schema.CancelByKey, env.Key}, true
	}
	return cancelID{}, false
}

// compact encodes a result as JSON, then compacts it to msgpack.
func compact(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return schema.JSONToMsgpack(nil, js)
}

// send publishes rep to the gateway waiting for env, logging a failure.
func (r *runner) send(env *schema.Envelope, rep *schema.Reply) {
	if err := r.publish(env, rep); err != nil {
		r.repeats.Warn(context.Background(), r.log, "replying", "replying", "key", env.Key, "err", err)
	}
}

// tooLarge returns the error that answers a call whose reply (or stored
// outcome) is n bytes when that is more than a message may be (the NATS
// server's max_payload: 1 MiB unless configured, 16 MiB in dev's embedded
// server), and nil otherwise. Such a reply would reach neither the gateway
// nor a bucket, and the client would wait for its deadline. (A reply is
// not checked before it is sent: its publish refuses it,
// nats.ErrMaxPayload, and the answer is this error.)
func (r *runner) tooLarge(n int) *schema.Error {
	if limit := r.nc.MaxPayload(); int64(n) > limit {
		return resultTooLarge(n, limit)
	}
	return nil
}

// resultTooLarge is tooLarge's error for a result of n bytes against the
// server's limit.
func resultTooLarge(n int, limit int64) *schema.Error {
	return schema.Errorf(schema.CodeInternalError, "the result is %d bytes, more than the %d bytes a message may hold (the NATS server's max_payload)", n, limit)
}

// publish sends rep to the gateway waiting for env.
func (r *runner) publish(env *schema.Envelope, rep *schema.Reply) error {
	b, err := rep.Marshal()
	if err != nil {
		return fmt.Errorf("encoding reply %s: %w", env.Key, err)
	}
	if err := r.nc.Publish(env.ReplyTo, b); err != nil {
		return fmt.Errorf("publishing reply %s: %w", env.Key, err)
	}
	return nil
}

// idempotent reports whether env may run again with no harm
// (schema.Idempotent, the answer for a tool cached in its entry).
func (r *runner) idempotent(env *schema.Envelope) bool {
	if env.Method == schema.MethodToolsCall {
		t := r.g.tool(env.Name)
		return t != nil && t.idempotent
	}
	return schema.Idempotent(env.Method, nil)
}

// poison dead-letters an envelope that cannot be processed and terminates
// it; if the drain deadline cut the dead-lettering short, it hands the
// envelope back instead, for another replica to dead-letter.
func (r *runner) poison(msg jetstream.Msg, reason string) {
	r.log.Warn("poison envelope", "subject", msg.Subject(), "reason", reason)
	if err := r.deadLetter("", msg.Data(), reason); err != nil && r.aborted() {
		r.handBack(msg, "", "drain deadline passed dead-lettering")
		return
	}
	r.metrics.delivered(deliveredError)
	_ = msg.Term()
}

// deadLetter copies data, the envelope of request key ("" if unknown), to
// the group's dead-letter subject with reason, waiting at most 5s and no
// longer than the drain deadline for the stream to store it. It logs and
// returns the error of a copy that was not stored.
func (r *runner) deadLetter(key string, data []byte, reason string) error {
	r.poisoned.Add(1)
	m := nats.NewMsg(streams.DLQSubject(r.g.name))
	m.Data = data
	m.Header.Set("Mcp-Dlq-Reason", reason)
	if key != "" {
		m.Header.Set("Mcp-Key", key)
	}
	ctx, cancel := context.WithTimeout(r.base, 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, m); err != nil {
		r.log.Error("dead-lettering", "key", key, "reason", reason, "err", err)
		return fmt.Errorf("dead-lettering to %s: %w", m.Subject, err)
	}
	return nil
}

// panicked is the answer to env when its handler panicked.
func panicked(env *schema.Envelope) *schema.Reply {
	return &schema.Reply{Key: env.Key, Error: schema.Errorf(schema.CodeInternalError, "internal error in %s", env.Name)}
}

func mustMarshal(env *schema.Envelope) []byte {
	b, _ := env.Marshal()
	return b
}

// finishedAnyway reports whether rep, what a handler cut short by the
// drain deadline returned, is the request's answer all the same: a result
// that is not an error (the handler finished its work, or ignored its
// cancellation) of a request that must not run twice, not a task's.
// Handing it back would run it, and its side effects, again. An error,
// most likely the context's, is not an answer.
func (r *runner) finishedAnyway(env *schema.Envelope, call *Call, rep *schema.Reply) bool {
	return rep.Error == nil && !schema.IsToolError(rep.Result) && !r.idempotent(env) &&
		env.TaskID == "" && (call == nil || call.task == nil)
}
