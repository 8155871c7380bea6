package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
)

const routerShards = 64

// router matches replies arriving on the gateway's reply subject to the
// requests waiting for them. The map is sharded so that thousands of
// concurrent waiters do not contend on one lock.
type router struct {
	seed   maphash.Seed
	shards [routerShards]routerShard
	log    *slog.Logger

	// duplicates counts replies for requests no longer waiting (a
	// redelivered envelope answered twice, or a reply after the deadline).
	duplicates atomic.Int64
	// dropped counts notifications lost to a full buffer.
	dropped atomic.Int64
	// unrelayed is called with a request to the client that cannot reach
	// it (its call is gone, or its buffer is full), so that the worker
	// asking is answered at once instead of waiting out the deadline.
	unrelayed func(*schema.Reply)
	// epoch counts the sweeps of unacknowledged publishes (see sweep).
	epoch atomic.Int64
	// waiters holds the waiters unregister took back, for the next
	// requests: a waiter, its channel and its timer serve request after
	// request.
	waiters sync.Pool
}

type routerShard struct {
	mu sync.Mutex
	m  map[string]*waiter
}

// waiter is one request waiting for its reply. The router fills its
// slots and wakes it: the result, written at most once (the key leaves the
// map on the first result), so notifications can never crowd it out; the
// notifications, up to noteBuffer of them, beyond which they are dropped
// (they are advisory); and the stream's refusal of the request, or
// errNoPubAck when none came (a good acknowledgement fills nothing). One
// mutex and one wake-up channel cost fewer allocations a call than a
// channel for each slot. Goroutines other than the request's touch a
// waiter only under its shard's lock, while the waiter's key is in the
// shard: once the key is gone, the request's goroutine alone has it, and
// gives it back for another request (unregister).
type waiter struct {
	// wake holds a token (capacity 1) when a slot was filled since the
	// token was last taken.
	wake chan struct{}

	mu     sync.Mutex
	result *schema.Reply
	notes  []*schema.Reply // made with capacity noteBuffer on the first
	pubErr error

	// published is the router's epoch when the request was last published
	// (0 before); acked is set by the stream's good acknowledgement.
	published atomic.Int64
	acked     atomic.Bool
	// partition is the request stream's partition it was published to.
	partition atomic.Int32
	// suspect is set when the gateway reconnected to NATS while the
	// request waited: its reply may have been lost in between.
	suspect atomic.Bool

	// msgID holds the Nats-Msg-Id header value of the request's publish,
	// and is the header's value slice: the publish encodes its headers
	// before it returns, so one slice serves every publish of the
	// request, not a new one each. Only the goroutine publishing the
	// request uses it.
	msgID [1]string
	// expiry is the timer of the request's deadline (expiryTimer), nil
	// until the waiter's first request makes it.
	expiry *time.Timer
}

// expiryTimer returns w's timer, set to fire after d.
func (w *waiter) expiryTimer(d time.Duration) *time.Timer {
	if w.expiry == nil {
		w.expiry = time.NewTimer(d)
	} else {
		w.expiry.Reset(d)
	}
	return w.expiry
}

// reset empties w for another request. Only its owner calls it, with its
// key gone from the router.
func (w *waiter) reset() {
	w.result, w.pubErr = nil, nil
	clear(w.notes)
	w.notes = w.notes[:0]
	w.published.Store(0)
	w.acked.Store(false)
	w.partition.Store(0)
	w.suspect.Store(false)
	w.msgID[0] = ""
	if w.expiry != nil {
		w.expiry.Stop()
	}
	select {
	case <-w.wake:
	default:
	}
}

// noteBuffer bounds the notifications buffered for one request.
const noteBuffer = 16

func newRouter(log *slog.Logger, unrelayed func(*schema.Reply)) *router {
	r := &router{seed: maphash.MakeSeed(), log: log, unrelayed: unrelayed}
	r.epoch.Store(1)
	for i := range r.shards {
		r.shards[i].m = map[string]*waiter{}
	}
	return r
}

func (r *router) shard(key string) *routerShard {
	return &r.shards[maphash.String(r.seed, key)%routerShards]
}

// register returns the waiter on which the replies for key arrive, until
// unregister(key, w).
func (r *router) register(key string) *waiter {
	w, _ := r.waiters.Get().(*waiter)
	if w == nil {
		w = &waiter{wake: make(chan struct{}, 1)}
	}
	s := r.shard(key)
	s.mu.Lock()
	s.m[key] = w
	s.mu.Unlock()
	return w
}

// unregister stops waiting for key, and takes back w, key's waiter, for
// another request: its caller no longer uses it.
func (r *router) unregister(key string, w *waiter) {
	s := r.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	w.reset()
	r.waiters.Put(w)
}

// deliver is the reply subscription's handler.
func (r *router) deliver(msg *nats.Msg) {
	rep, err := schema.UnmarshalReply(msg.Data)
	if err != nil {
		r.log.Warn("dropping malformed reply", "err", err)
		return
	}
	s := r.shard(rep.Key)
	s.mu.Lock()
	w := s.m[rep.Key]
	full := false // w's notification buffer, for a notification or request
	switch {
	case w == nil:
	case rep.Kind == schema.ReplyResult:
		delete(s.m, rep.Key) // a result ends the request: later copies are duplicates
		w.setResult(rep)
	default:
		full = !w.addNote(rep)
	}
	s.mu.Unlock()
	switch {
	case w == nil && rep.Kind == schema.ReplyRequest:
		r.unrelayed(rep)
	case w == nil:
		r.duplicates.Add(1)
	case full:
		if rep.Kind == schema.ReplyRequest {
			r.unrelayed(rep)
		} else {
			r.dropped.Add(1)
		}
	}
}

// published records that the request waiting on w was just published to
// partition p's stream and awaits its acknowledgement.
func (r *router) published(w *waiter, p int) {
	w.acked.Store(false)
	w.partition.Store(int32(p))
	w.published.Store(r.epoch.Load())
}

// elected ends, with errNoPubAck, the waits of the requests published to
// partition p's stream and not acknowledged: the stream has a new leader,
// and what the old one did not acknowledge is published again now rather
// than when sweep finds it overdue.
func (r *router) elected(p int) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, w := range s.m {
			if w.published.Load() != 0 && !w.acked.Load() && w.partition.Load() == int32(p) {
				w.published.Store(0)
				w.signal(errNoPubAck)
			}
		}
		s.mu.Unlock()
	}
}

// suspectAll marks every request waiting now as suspect: the gateway has
// just reconnected to NATS, and a reply sent while it was away is lost.
// From the next sweep on, each one's wait is ended with errReplyMayBeLost
// until it has its reply or has recovered it (recover.go).
func (r *router) suspectAll() {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, w := range s.m {
			w.suspect.Store(true)
		}
		s.mu.Unlock()
	}
}

// pubAck handles the stream's acknowledgement of the request key. A good
// one only marks the request stored: it goes on waiting for its reply,
// without a wake-up. A refusal, or a no-responders status when no stream
// took the request, is passed to the request's wait, which retries or
// answers.
func (r *router) pubAck(key string, msg *nats.Msg) {
	err := pubAckError(msg)
	s := r.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch w := s.m[key]; {
	case w == nil:
	case err == nil:
		w.acked.Store(true)
	default:
		w.signal(err)
	}
}

// signal ends w's wait with err, unless an error is pending already.
func (w *waiter) signal(err error) {
	w.mu.Lock()
	pending := w.pubErr != nil
	if !pending {
		w.pubErr = err
	}
	w.mu.Unlock()
	if !pending {
		w.wakeUp()
	}
}

// setResult fills w's result slot; the router calls it at most once.
func (w *waiter) setResult(rep *schema.Reply) {
	w.mu.Lock()
	w.result = rep
	w.mu.Unlock()
	w.wakeUp()
}

// addNote adds a notification or a request to the client to w's buffer,
// and reports false, adding nothing, when the buffer is full.
func (w *waiter) addNote(rep *schema.Reply) bool {
	w.mu.Lock()
	if w.notes == nil {
		w.notes = make([]*schema.Reply, 0, noteBuffer)
	}
	added := len(w.notes) < noteBuffer
	if added {
		w.notes = append(w.notes, rep)
	}
	w.mu.Unlock()
	if added {
		w.wakeUp()
	}
	return added
}

// wakeUp leaves a token on w.wake unless one is there already.
func (w *waiter) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take empties w's slots: it returns the result if it has come (it stays
// in its slot), the notifications buffered, appended to notes in the order
// they came, and the pending error, if any.
func (w *waiter) take(notes []*schema.Reply) (*schema.Reply, []*schema.Reply, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	notes = append(notes, w.notes...)
	clear(w.notes)
	w.notes = w.notes[:0]
	err := w.pubErr
	w.pubErr = nil
	return w.result, notes, err
}

// takeResult is take when the result has come, leaving a pending error in
// its slot; before, it takes nothing and returns nil.
func (w *waiter) takeResult(notes []*schema.Reply) (*schema.Reply, []*schema.Reply) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.result == nil {
		return nil, notes
	}
	notes = append(notes, w.notes...)
	clear(w.notes)
	w.notes = w.notes[:0]
	return w.result, notes
}

// pubAckTick is the period of sweep: a publish that no acknowledgement
// answers is sent again after two to three ticks.
const pubAckTick = time.Second

// errNoPubAck ends the wait of a request whose publish nothing acknowledged:
// the stream's leader died with it, or the message was lost on the way. It
// wraps nats.ErrTimeout, which the publish loop retries; the stream drops
// the copy by its Nats-Msg-Id if the first one was stored after all.
var errNoPubAck = fmt.Errorf("no acknowledgement from the stream within %v: %w", 2*pubAckTick, nats.ErrTimeout)

// sweep ends, every tick until done closes, the waits of the requests
// published at least two ticks ago and never acknowledged. One goroutine
// for all requests costs less than a timer for each.
func (r *router) sweep(done <-chan struct{}, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.expire()
		}
	}
}

// expire is one tick of sweep: it ends the waits of the requests published
// in the third epoch back or earlier and not acknowledged since, and those
// of suspect requests.
func (r *router) expire() {
	now := r.epoch.Add(1)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, w := range s.m {
			switch p := w.published.Load(); {
			case p != 0 && now-p >= 3 && !w.acked.Load():
				w.published.Store(0)
				w.signal(errNoPubAck)
			case w.suspect.Load():
				w.signal(errReplyMayBeLost)
			}
		}
		s.mu.Unlock()
	}
}

// pubAckError is the error an acknowledgement carries: nats.ErrNoResponders
// for a 503 status, a *jetstream.APIError for a refusal, or an error saying
// it could not be read; nil for a good one.
func pubAckError(msg *nats.Msg) error {
	if st := msg.Header.Get("Status"); st != "" {
		if st == "503" {
			return nats.ErrNoResponders
		}
		return fmt.Errorf("acknowledgement with status %s %s", st, msg.Header.Get("Description"))
	}
	if !bytes.Contains(msg.Data, []byte(`"error"`)) && bytes.HasPrefix(msg.Data, []byte("{")) {
		return nil
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &ack); err != nil {
		return fmt.Errorf("reading acknowledgement %q: %w", msg.Data, err)
	}
	if ack.Error != nil {
		return ack.Error
	}
	return nil
}
