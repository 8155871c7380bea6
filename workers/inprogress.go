package workers

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

// slot is what one pool goroutine holds while a handler runs: the
// envelope, when the server last heard that it is being worked on, and
// until when it is; and the context its handlers' contexts hang under,
// which ends the one running, for the client's cancellation or the drain
// deadline.
type slot struct {
	mu    sync.Mutex
	msg   jetstream.Msg // nil while the goroutine waits for work
	env   *schema.Envelope
	since time.Time
	// until is when the envelope is no longer kept in progress (zero for
	// never): its deadline, or its task's once the call is detached.
	until time.Time
	// claimed is set when this replica holds the request's claim, renewed
	// with each in-progress acknowledgement.
	claimed bool
	// ctx is the parent of the slot's handlers' contexts, and end ends it
	// with a cause. It lasts from handler to handler until it is ended,
	// then is made anew (context): a handler's context costs its own
	// deadline's and nothing more, and what ends one handler never
	// reaches the next.
	ctx context.Context
	end context.CancelCauseFunc
	// key names the request held for its client's cancellation, when
	// keyed (see cancelKey).
	key   cancelID
	keyed bool
}

// context returns the parent of the next handler's context: the slot's,
// made anew under root if it has ended.
func (s *slot) context(root context.Context) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		s.ctx, s.end = context.WithCancelCause(root)
	}
	return s.ctx
}

// hold records that msg's handler started at now, and whether this
// replica holds the request's claim; msg is kept in progress until env's
// deadline. A cancellation of key, when keyed, ends the handler's context
// from now until release.
func (s *slot) hold(msg jetstream.Msg, env *schema.Envelope, now time.Time, claimed bool, key cancelID, keyed bool) {
	s.mu.Lock()
	s.msg, s.env, s.since, s.until, s.claimed, s.key, s.keyed = msg, env, now, env.DeadlineTime(), claimed, key, keyed
	s.mu.Unlock()
}

// abort ends the slot's context, and so the context of the handler
// held, if any, with cause.
func (s *slot) abort(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end != nil {
		s.end(cause)
	}
}

// cancel ends the context of the handler held with cause, and reports
// true, if it serves the request of key. Under the slot's lock, so that
// it cannot reach a handler that comes after that request's.
func (s *slot) cancel(key cancelID, cause error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keyed || s.key != key {
		return false
	}
	s.end(cause)
	return true
}

// holdUntil keeps the envelope in progress until t instead: the call was
// detached into a task that ends at t.
func (s *slot) holdUntil(t time.Time) {
	s.mu.Lock()
	s.until = t
	s.mu.Unlock()
}

// release records that the handler returned.
func (s *slot) release() {
	s.mu.Lock()
	s.msg, s.env, s.keyed = nil, nil, false
	s.mu.Unlock()
}

// held is how many pool goroutines hold an envelope.
func (r *runner) held() int {
	n := 0
	for i := range r.slots {
		s := &r.slots[i]
		s.mu.Lock()
		if s.msg != nil {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// extendAcks tells the server that envelopes are still being worked on
// while their handlers run (JetStream in-progress acknowledgements, which
// restart the envelope's AckWait), so that they are not redelivered to
// another replica meanwhile. Every quarter AckWait it sends an in-progress
// acknowledgement for each envelope whose server last heard of it at the
// tick before or earlier (renewDue), so the server hears of a running
// handler every quarter AckWait, and of a new one within three eighths.
//
// The common handler that ends within a quarter AckWait costs two
// uncontended locks, and no timer of its own. A handler that ignores its
// context past the deadline (the envelope's, or its task's once detached:
// slot.until) no longer holds the envelope: redelivery may then answer
// it. extendAcks returns when stop is closed.
func (r *runner) extendAcks(stop <-chan struct{}) {
	every := r.topo.AckWait / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			for i := range r.slots {
				s := &r.slots[i]
				s.mu.Lock()
				if s.msg != nil && renewDue(now, s.since, every) && (s.until.IsZero() || now.Before(s.until)) {
					_ = s.msg.InProgress()
					if s.claimed {
						r.renewClaim(s.env)
					}
					s.since = now
				}
				s.mu.Unlock()
			}
		}
	}
}

// renewDue reports whether a handler whose server last heard of it at
// since is acknowledged in progress again at the tick now, ticks coming
// every: at each tick after the one that last did, and at the first tick
// at least half an interval after its start. Half, not a whole one: a
// ticker's ticks come a few nanoseconds more or less than every apart,
// and a test against the whole interval skipped about a third of them,
// leaving a claim unrenewed for half an AckWait.
func renewDue(now, since time.Time, every time.Duration) bool {
	return now.Sub(since) >= every/2
}
