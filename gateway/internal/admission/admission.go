// Package admission decides, at once, whether the gateway takes one more
// call to the workers: nothing waits for room, a call beyond a limit is
// refused and its client told to try again.
//
// Three caps apply together, in one [Controller.Admit]: the calls one
// session has in flight, the calls one principal has in flight over all
// its sessions (a sharded count whose entries exist only while above
// zero), and the gateway's own in-flight limit, which adapts (limiter.go):
// it falls when calls queue past a target and, with a CPU queue target,
// while Go's scheduling latency shows the gateway's CPU saturated
// ([Controller.WatchCPU], cpu.go).
package admission

import (
	"errors"
	"sync/atomic"
	"time"
)

// Errors Admit refuses a call with; each text is the reason its client is
// told.
var (
	ErrSessionLimit   = errors.New("session in-flight limit reached")
	ErrPrincipalLimit = errors.New("principal in-flight limit reached")
	ErrGatewayLimit   = errors.New("gateway in-flight limit reached")
)

// Config sizes a [Controller]; zero fields take the defaults named.
type Config struct {
	// MaxInFlight is the ceiling of the gateway's adaptive limit (default
	// 10,000); the limit starts at 256 (or MaxInFlight, if lower).
	MaxInFlight int64
	// QueueTarget is the queueing a call may see before the limit falls
	// (default 10ms).
	QueueTarget time.Duration
	// Window is how often the limit adapts (default 100ms).
	Window time.Duration
	// MaxSession bounds one session's calls in flight (default 64).
	MaxSession int32
	// MaxPrincipal bounds one principal's calls in flight (default 256).
	MaxPrincipal int
	// Queueing, if set, gets the queueing of every answered call (its
	// latency less its handler's run time), as the limit sees it.
	Queueing func(time.Duration)
}

// Controller admits calls to the workers. Make one with [New].
type Controller struct {
	limit        *limiter
	principals   *principals
	inflight     atomic.Int64
	maxSession   int32
	maxPrincipal int
	queueing     func(time.Duration)
}

// New returns a Controller sized by cfg.
func New(cfg Config) *Controller {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 10_000
	}
	if cfg.QueueTarget <= 0 {
		cfg.QueueTarget = 10 * time.Millisecond
	}
	if cfg.Window <= 0 {
		cfg.Window = 100 * time.Millisecond
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = 64
	}
	if cfg.MaxPrincipal <= 0 {
		cfg.MaxPrincipal = 256
	}
	return &Controller{
		limit:        newLimiter(cfg.MaxInFlight, cfg.QueueTarget, cfg.Window),
		principals:   newPrincipals(),
		maxSession:   cfg.MaxSession,
		maxPrincipal: cfg.MaxPrincipal,
		queueing:     cfg.Queueing,
	}
}

// Admit takes a slot for one call in its session (session counts the
// session's calls in flight), for its principal ("" for none) and in the
// gateway: all three, or none. It returns the ticket whose Release gives
// them back, or ErrSessionLimit, ErrPrincipalLimit or ErrGatewayLimit
// when a cap is reached.
func (c *Controller) Admit(session *atomic.Int32, principal string) (Ticket, error) {
	if session.Add(1) > c.maxSession {
		session.Add(-1)
		return Ticket{}, ErrSessionLimit
	}
	if principal != "" && !c.principals.acquire(principal, c.maxPrincipal) {
		session.Add(-1)
		return Ticket{}, ErrPrincipalLimit
	}
	inflight := c.inflight.Add(1)
	if !c.limit.allow(inflight - 1) {
		c.inflight.Add(-1)
		if principal != "" {
			c.principals.release(principal)
		}
		session.Add(-1)
		return Ticket{}, ErrGatewayLimit
	}
	return Ticket{c: c, session: session, principal: principal, inflight: inflight, admitted: time.Now()}, nil
}

// Ticket is one admitted call's hold on its slots. It is a value, so
// admitting a call costs no allocation.
type Ticket struct {
	c         *Controller
	session   *atomic.Int32
	principal string
	inflight  int64 // the gateway's calls in flight, this one included, at admission
	admitted  time.Time
}

// Admitted is when Admit admitted the call.
func (t Ticket) Admitted() time.Time { return t.admitted }

// Release gives the call's slots back; call it exactly once, when the
// call ends (at now), with the handler's run time for a call the workers
// answered (the rest of its latency since Admit is queueing, which the
// limit adapts to) or a negative duration for one they did not (a
// timeout, a lost publish), which teaches the limit nothing.
func (t Ticket) Release(ran time.Duration, now time.Time) {
	c := t.c
	if ran >= 0 {
		queued := now.Sub(t.admitted) - ran
		c.limit.observe(queued, t.inflight, now)
		if c.queueing != nil {
			c.queueing(queued)
		}
	}
	c.inflight.Add(-1)
	if t.principal != "" {
		c.principals.release(t.principal)
	}
	t.session.Add(-1)
}

// InFlight is the number of calls admitted and not yet released.
func (c *Controller) InFlight() int64 { return c.inflight.Load() }

// Limit is the gateway's in-flight limit now.
func (c *Controller) Limit() int64 { return c.limit.limit.Load() }
