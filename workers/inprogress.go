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
// until when it is.
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
	// cancel ends the handler's context (abort).
	cancel context.CancelCauseFunc
}

// hold records that msg's handler started at now, and whether this
// replica holds the request's claim; msg is kept in progress until env's
// deadline. cancel ends the handler's context.
func (s *slot) hold(msg jetstream.Msg, env *schema.Envelope, now time.Time, claimed bool, cancel context.CancelCauseFunc) {
	s.mu.Lock()
	s.msg, s.env, s.since, s.until, s.claimed, s.cancel = msg, env, now, env.DeadlineTime(), claimed, cancel
	s.mu.Unlock()
}

// abort ends the context of the handler held, if any, with cause.
func (s *slot) abort(cause error) {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
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
	s.msg, s.env, s.cancel = nil, nil, nil
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
