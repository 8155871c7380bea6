package workers

import (
	"context"
	"sync"
	"time"
)

// handlerContext is a handler's context: under its slot's (which a
// client's cancellation or the drain deadline ends, with a cause), ending
// at the call's deadline and when the handler's delivery has been
// processed (end).
//
// It is what context.WithDeadline (or WithCancel, without a deadline)
// under the slot's context gives, made only once something may wait on
// it: when Done or Value is first asked for, or when Err finds it ended.
// Until then Err compares the clock with the deadline. A handler that
// never watches its context, most quick ones, so costs no timer, and no
// entry among the slot context's children; one that does costs what
// WithDeadline costs. One difference: when both its deadline and its
// slot's end came before anything asked, it tells of the slot's end (its
// cause), whichever came first.
type handlerContext struct {
	parent   context.Context // the slot's
	deadline time.Time       // zero for none

	mu     sync.Mutex
	made   context.Context // nil until made (make)
	cancel context.CancelFunc
	ended  bool // end was called
}

// newHandlerContext returns the context of a handler under the slot's
// context parent, ending at deadline (zero for none).
func newHandlerContext(parent context.Context, deadline time.Time) *handlerContext {
	return &handlerContext{parent: parent, deadline: deadline}
}

// make makes the context it stands for, ended at once if end was called.
// Called under c.mu, only while c.made is nil.
func (c *handlerContext) make() {
	if c.deadline.IsZero() {
		c.made, c.cancel = context.WithCancel(c.parent)
	} else {
		c.made, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	if c.ended {
		c.cancel()
	}
}

// ensure returns the context c stands for, made now if it was not.
func (c *handlerContext) ensure() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made == nil {
		c.make()
	}
	return c.made
}

// end ends the context: the handler's delivery has been processed.
func (c *handlerContext) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *handlerContext) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *handlerContext) Done() <-chan struct{} { return c.ensure().Done() }

// Value makes the context first, so that context.Cause finds the cause
// of the context made (through the key of the context package's own
// cancellable contexts), not the slot's alone.
func (c *handlerContext) Value(key any) any { return c.ensure().Value(key) }

// Err is nil while the context has not ended, without making it; once it
// has (its slot's context ended, its deadline passed, or end was called),
// it is the error of the context made, with its cause.
func (c *handlerContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made == nil {
		if !c.ended && c.parent.Err() == nil && (c.deadline.IsZero() || time.Now().Before(c.deadline)) {
			return nil
		}
		c.make()
	}
	return c.made.Err()
}

func (c *handlerContext) String() string { return "workers.handlerContext" }
