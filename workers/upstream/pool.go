package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// pool keeps Config.Pool connections to the upstream up: each slot has a
// supervisor that starts its connection (a process, or an HTTP session),
// initializes it, and starts it again with backoff when it goes.
type pool struct {
	size       int
	affinity   bool
	minBackoff time.Duration
	maxBackoff time.Duration
	// dial starts and initializes one connection.
	dial func(ctx context.Context, slot int) (*conn, error)
	log  *slog.Logger

	mu    sync.Mutex
	conns []*conn // by slot; nil while the slot's connection is down
	// changed is closed, and replaced, whenever a slot comes up or goes.
	changed chan struct{}
	// lastErr is the last failure to start a connection, attempts how
	// many starts failed since one last succeeded; ever is set once any
	// connection initialized.
	lastErr  error
	attempts int
	ever     bool
	restarts int
	rr       int
	// fatal, once set, is a start failure no retry mends (the upstream
	// does not speak the stateless revision): the slots stop, and pick
	// returns it.
	fatal error
	// fallback marks a pool whose calls have somewhere else to go (the
	// stateless pool: the session connections): while none of its
	// connections is up and its last start failed, pick does not wait
	// for the next start but returns errStatelessDown.
	fallback bool
}

func newPool(size int, affinity bool, minBackoff, maxBackoff time.Duration, dial func(context.Context, int) (*conn, error), log *slog.Logger) *pool {
	return &pool{size: size, affinity: affinity, minBackoff: minBackoff, maxBackoff: maxBackoff, dial: dial, log: log,
		conns: make([]*conn, size), changed: make(chan struct{})}
}

// run supervises the slots until ctx ends, then closes their connections
// and returns.
func (p *pool) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range p.size {
		wg.Add(1)
		go func() { defer wg.Done(); p.supervise(ctx, i) }()
	}
	wg.Wait()
}

// stableFor is how long a connection must have lived for the next
// restart's backoff to start from the minimum again.
const stableFor = 30 * time.Second

// errStopping is why connections close when the worker stops.
var errStopping = errors.New("the worker is stopping")

// supervise keeps slot i's connection up until ctx ends.
func (p *pool) supervise(ctx context.Context, i int) {
	backoff := p.minBackoff
	for {
		if ctx.Err() != nil {
			return
		}
		k, err := p.dial(ctx, i)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errNoStateless) {
				p.log.Info("stateless clients' calls take the session connections", "slot", i, "err", err)
				p.mu.Lock()
				p.fatal = err
				close(p.changed)
				p.changed = make(chan struct{})
				p.mu.Unlock()
				return
			}
			p.failed(err)
			p.log.Warn("upstream did not start; trying again", "slot", i, "err", err, "retryIn", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, p.maxBackoff)
			continue
		}
		started := time.Now()
		p.set(i, k)
		attrs := []any{"slot", i}
		if k.proc != nil {
			attrs = append(attrs, "pid", k.proc.pid())
		}
		p.log.Info("upstream connection up", attrs...)
		var exited <-chan struct{}
		if k.proc != nil {
			exited = k.proc.waited
		}
		select {
		case <-k.done:
		case <-exited: // a child that keeps stdout open does not hide an exit
			k.fail(fmt.Errorf("%w: %v", errLost, k.proc.exitError(nil)))
		case <-ctx.Done():
			p.set(i, nil)
			k.close(errStopping)
			return
		}
		p.set(i, nil)
		why := k.err()
		k.close(why)
		if time.Since(started) >= stableFor {
			backoff = p.minBackoff
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		p.log.Warn("upstream connection lost; starting it again", append(attrs, "err", why, "retryIn", backoff)...)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, p.maxBackoff)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// set puts k (nil: none) in slot i and wakes those waiting for a change.
func (p *pool) set(i int, k *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[i] = k
	if k != nil {
		p.ever, p.attempts, p.lastErr = true, 0, nil
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// failed records a failed start, and wakes those waiting for a change
// (pick in a fallback pool gives up on it).
func (p *pool) failed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	p.attempts++
	close(p.changed)
	p.changed = make(chan struct{})
}

// poolState is what state reports of a pool.
type poolState struct {
	// up is how many slots hold a connection that is up.
	up int
	// lastErr is the last failed start's error, nil since one succeeded;
	// attempts counts the failed starts since then.
	lastErr  error
	attempts int
	// ever is set once a start has succeeded.
	ever bool
}

// state says how many slots are up, and the last start's error with the
// failed starts since one succeeded.
func (p *pool) state() poolState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := poolState{lastErr: p.lastErr, attempts: p.attempts, ever: p.ever}
	for _, k := range p.conns {
		if k != nil && k.err() == nil {
			st.up++
		}
	}
	return st
}

// pick returns the connection a call goes to, waiting while none is up
// until ctx ends (or returning the pool's fatal error; in a fallback
// pool, errStatelessDown once a start has failed since one last
// succeeded): with affinity, the slot the session hashes to (the same
// one for all its calls); otherwise the one with the fewest requests in
// flight, ties taken in turn. except, if set, is avoided while another
// is up (a retry goes elsewhere).
func (p *pool) pick(ctx context.Context, session string, except *conn) (*conn, error) {
	for {
		p.mu.Lock()
		if p.fatal != nil {
			p.mu.Unlock()
			return nil, p.fatal
		}
		var best *conn
		if p.affinity && session != "" {
			h := fnv.New32a()
			_, _ = h.Write([]byte(session))
			if k := p.conns[int(h.Sum32()%uint32(p.size))]; k != nil && k.err() == nil {
				best = k
			}
		} else {
			load := 0
			for j := range p.size {
				k := p.conns[(p.rr+j)%p.size]
				if k == nil || k.err() != nil || (k == except && p.size > 1) {
					continue
				}
				if n := k.inFlight(); best == nil || n < load {
					best, load = k, n
				}
			}
			p.rr++
		}
		changed, lastErr := p.changed, p.lastErr
		p.mu.Unlock()
		if best != nil {
			return best, nil
		}
		if p.fallback && lastErr != nil {
			return nil, fmt.Errorf("%w (last start: %v)", errStatelessDown, lastErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if lastErr := p.state().lastErr; lastErr != nil {
				return nil, fmt.Errorf("no upstream connection is up (last start: %v): %w", lastErr, context.Cause(ctx))
			}
			return nil, fmt.Errorf("no upstream connection is up: %w", context.Cause(ctx))
		}
	}
}

// any returns a connection that is up, waiting until ctx ends.
func (p *pool) any(ctx context.Context) (*conn, error) {
	return p.pick(ctx, "", nil)
}
