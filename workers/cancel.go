package workers

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
)

// A client cancels a request with notifications/cancelled (a stateless
// one by closing its stream); the gateway publishes the cancellation to
// every replica (streams.CancelSubject). The replica running the request
// cancels its handler's context. One holding the envelope unstarted, in
// its buffers behind a busy pool, remembers the cancellation, and does
// not run the request when its turn comes.

// onCancel handles a cancellation: it cancels the handler of the request
// if it runs here, and remembers it for an envelope still waiting.
func (r *runner) onCancel(msg *nats.Msg) {
	c, err := schema.UnmarshalCancel(msg.Data)
	if err != nil {
		return
	}
	reason := c.Reason
	if reason == "" {
		reason = "cancelled by the client"
	}
	key := cancelID{c.Session, c.RequestID}
	// Remembered before the look-up, as process stores a handler before
	// it asks: one of the two sees the other.
	r.cancelled.add(key, reason)
	cause := errors.New(reason)
	for i := range r.slots {
		if r.slots[i].cancel(key, cause) {
			return
		}
	}
	if cancel := r.taskRuns.get(key); cancel != nil {
		cancel(cause)
	}
}

// cancelID names a request in the cancellations a replica receives
// (schema.Cancel): a session's request by its session and JSON-RPC id, a
// stateless request by schema.CancelByKey and its key, a task by
// schema.CancelTask and its id.
type cancelID struct{ session, id string }

// taskRuns maps the tasks running here to their cancel functions (a
// request's handler is found by its slot instead). The zero value is
// ready.
type taskRuns struct {
	mu sync.Mutex
	m  map[cancelID]context.CancelCauseFunc
}

// add maps key to cancel.
func (h *taskRuns) add(key cancelID, cancel context.CancelCauseFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[cancelID]context.CancelCauseFunc)
	}
	h.m[key] = cancel
}

// remove forgets key.
func (h *taskRuns) remove(key cancelID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}

// get returns key's cancel function, nil when it runs nowhere here.
func (h *taskRuns) get(key cancelID) context.CancelCauseFunc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[key]
}

// cancelMemory bounds the cancellations a replica remembers: the oldest
// is forgotten when another comes. An envelope waits in a replica's
// buffers for at most one pull's batch of handlers' runs, in which far
// fewer cancellations come.
const cancelMemory = 4096

// cancelled remembers the latest cancelMemory cancellations, by cancel key
// (cancelID), with their reasons. A key is never reused: a JSON-RPC id
// names one request of its session, and a stateless request's key is its
// own. The zero value is ready.
type cancelled struct {
	mu      sync.Mutex
	reasons map[cancelID]string
	ring    []cancelID // the keys, oldest at next once full
	next    int
}

// add remembers that the request of key was cancelled, for reason.
func (c *cancelled) add(key cancelID, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reasons == nil {
		c.reasons = make(map[cancelID]string)
	}
	if _, ok := c.reasons[key]; ok {
		return
	}
	if len(c.ring) < cancelMemory {
		c.ring = append(c.ring, key)
	} else {
		delete(c.reasons, c.ring[c.next])
		c.ring[c.next] = key
		c.next = (c.next + 1) % cancelMemory
	}
	c.reasons[key] = reason
}

// reason returns why the request of key was cancelled, if it was lately.
func (c *cancelled) reason(key cancelID) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reason, ok := c.reasons[key]
	return reason, ok
}
