package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// A request that must not run twice (not idempotent, its result stored)
// is claimed before its handler runs: a key in the result bucket
// (streams.ClaimKey) with a TTL of two AckWaits, renewed with every
// in-progress acknowledgement while the handler runs, then marked done
// for as long as results are kept. The server redelivers an envelope a
// busy replica holds unstarted (buffered behind a full pool) for AckWait
// to another replica; whichever gets to it second finds the claim and
// does not run it: it answers from the stored result when there is one,
// and otherwise drops its copy, which the holder acknowledges. A claim
// whose holder stopped renewing it (the replica died) is taken over. A
// claim the bucket can neither make nor read (its leader being elected, a
// timeout) says nothing about another run: the request is asked for again
// a second later, as when its stored result cannot be read, and its last
// delivery runs it. A bucket that can never take a claim (provisioned
// before claims, without per-message TTLs) runs requests unclaimed.

// claimOutcome is what claiming a request found.
type claimOutcome int

const (
	// claimRun: this replica holds the claim and runs the request (also
	// when the bucket can never take a claim: provisioned before claims,
	// without per-message TTLs).
	claimRun claimOutcome = iota
	// claimAnswered: another run stored the result; answer from it.
	claimAnswered
	// claimHeld: a live replica runs the request; drop this copy.
	claimHeld
	// claimFinished: a run answered the request, and its result is not
	// stored (or no longer); acknowledge this copy.
	claimFinished
	// claimUnknown: the bucket could neither make the claim nor show
	// another's (its leader being elected, a timeout): whether another
	// replica runs the request is unknown.
	claimUnknown
)

// jsErrCodeMsgTTLDisabled is the JetStream API error (err_code 10166,
// "per-message TTL is disabled") of a write with a TTL to a stream that
// does not allow per-message TTLs: nats.go has no constant for it.
const jsErrCodeMsgTTLDisabled jetstream.ErrorCode = 10166

// claimImpossible reports whether err, from making a claim, says that the
// result bucket can never take one: its stream, provisioned before claims,
// does not allow per-message TTLs. Any other error may pass.
func claimImpossible(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeMsgTTLDisabled
}

// claimValue is what a claim holds while its holder runs the request, and
// once it is done.
const claimDone = "done"

// claimTTL is how long a claim lives unless renewed: two AckWaits, in
// whole seconds as JetStream takes message TTLs.
func (r *runner) claimTTL() time.Duration {
	ttl := max(2*r.topo.AckWait, time.Second)
	return (ttl + time.Second - 1) / time.Second * time.Second
}

// claim makes this replica the one that runs env. It returns the outcome,
// the claim's revision when it holds it, the stored reply for
// claimAnswered, and the bucket's error for claimUnknown.
func (r *runner) claim(ctx context.Context, env *schema.Envelope) (claimOutcome, uint64, *schema.Reply, error) {
	key := streams.ClaimKey(env.Key)
	rev, err := r.results.Create(ctx, key, []byte(r.o.Instance), jetstream.KeyTTL(r.claimTTL()))
	if err == nil {
		return claimRun, rev, nil, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		if claimImpossible(err) {
			r.log.Debug("claiming a request: the result bucket takes no claims, run without one", "key", env.Key, "err", err)
			return claimRun, 0, nil, nil
		}
		return claimUnknown, 0, nil, fmt.Errorf("claiming request %s: %w", env.Key, err)
	}
	if e, err := r.results.Get(ctx, streams.ResultKey(env.Key)); err == nil {
		if rep, err := schema.UnmarshalReply(e.Value()); err == nil {
			return claimAnswered, 0, rep, nil
		}
	}
	e, err := r.results.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return r.claim(ctx, env) // it expired meanwhile
	case err != nil:
		return claimUnknown, 0, nil, fmt.Errorf("reading the claim of request %s: %w", env.Key, err)
	case string(e.Value()) == claimDone:
		// Done, but its result is gone (a result not stored in time, or
		// expired): the run answered its gateway already.
		return claimFinished, 0, nil, nil
	case time.Since(e.Created()) < r.claimStale():
		return claimHeld, 0, nil, nil
	}
	// Its holder stopped renewing it: take it over (only one taker wins).
	pa, err := r.js.Publish(ctx, streams.ClaimSubject(env.Key), []byte(r.o.Instance),
		jetstream.WithExpectLastSequencePerSubject(e.Revision()), jetstream.WithMsgTTL(r.claimTTL()))
	if err != nil {
		return claimHeld, 0, nil, nil // another replica took it over first
	}
	return claimRun, pa.Sequence, nil, nil
}

// claimStale is how long after its last renewal a claim's holder is taken
// to be gone: two renewals missed (they come every quarter AckWait, see
// extendAcks). A dead holder's envelope is redelivered AckWait after its
// last in-progress acknowledgement, which renewed the claim too: its claim
// is stale by then, a quarter AckWait to spare for the clocks of the
// server (the claim's time) and of this replica to differ.
func (r *runner) claimStale() time.Duration { return 3 * r.topo.AckWait / 4 }

// renewClaim renews env's claim (extendAcks, with the in-progress
// acknowledgement), without waiting.
func (r *runner) renewClaim(env *schema.Envelope) {
	if _, err := r.js.PublishAsync(streams.ClaimSubject(env.Key), []byte(r.o.Instance), jetstream.WithMsgTTL(r.claimTTL())); err != nil {
		r.log.Debug("renewing a request's claim", "key", env.Key, "err", err)
	}
}

// finishClaim marks env's claim done for as long as results are kept,
// without waiting.
func (r *runner) finishClaim(env *schema.Envelope) {
	ttl := (r.topo.ResultTTL + time.Second - 1) / time.Second * time.Second
	if _, err := r.js.PublishAsync(streams.ClaimSubject(env.Key), []byte(claimDone), jetstream.WithMsgTTL(ttl)); err != nil {
		r.log.Debug("finishing a request's claim", "key", env.Key, "err", err)
	}
}

// claimRequest claims env, delivered the attempt-th time, for this
// replica (see claim). It reports whether this replica holds the claim,
// and whether msg was handled instead: answered from the stored result, a
// copy of a request another replica runs (dropped unacknowledged: its
// holder acknowledges it) or ran (acknowledged), or, when the bucket could
// not say, its redelivery delayed (handed back past the drain deadline).
// The last delivery of a request whose claim the bucket could not say
// runs it unclaimed: at least once, even if the bucket stays unreachable.
func (r *runner) claimRequest(ctx context.Context, span trace.Span, msg jetstream.Msg, env *schema.Envelope, attempt int) (claimed, handled bool) {
	outcome, rev, rep, err := r.claim(r.base, env)
	switch outcome {
	case claimUnknown:
		if r.aborted() {
			r.handBack(msg, env.Key, "drain deadline passed claiming the request")
			return false, true
		}
		if attempt < r.topo.MaxDeliver {
			event(span, "not run: claim not made, redelivery delayed")
			r.repeats.Warn(ctx, r.log, "claiming", "claiming a request, redelivery delayed", "key", env.Key, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return false, true
		}
		r.repeats.Warn(ctx, r.log, "claiming", "claiming a request on its last delivery: run without a claim", "key", env.Key, "err", err)
		return false, false
	case claimAnswered:
		rep.Cached = true
		event(span, "answered from the result bucket: another replica ran it")
		r.cached.Add(1)
		r.metrics.delivered(deliveredDuplicate)
		r.send(env, rep)
		_ = msg.Ack()
		return false, true
	case claimHeld:
		event(span, "not run: another replica runs it")
		r.metrics.delivered(deliveredDuplicate)
		r.log.DebugContext(ctx, "dropping a copy of a request another replica runs", "key", env.Key)
		return false, true
	case claimFinished:
		event(span, "not run: another replica ran it")
		r.metrics.delivered(deliveredDuplicate)
		_ = msg.Ack()
		return false, true
	}
	return rev != 0, false
}

// releaseClaim removes env's claim, for a request handed back to the
// stream unfinished: the replica that gets it next claims it at once.
func (r *runner) releaseClaim(env *schema.Envelope) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.base), 2*time.Second)
	defer cancel()
	if err := r.results.Delete(ctx, streams.ClaimKey(env.Key)); err != nil {
		r.log.Debug("releasing a request's claim", "key", env.Key, "err", err)
	}
}
