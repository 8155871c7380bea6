package workers

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// consuming holds a replica's pulls from its group's consumers, one
// [jetstream.ConsumeContext] per partition, and starts one again when its
// consumer gets a new leader.
//
// A pull request lives on the consumer's leader. When that node dies, the
// pull is lost with it, and Consume pulls again only when two heartbeats
// are overdue (pullHeartbeat): each pull made while the consumer has no
// leader is lost too, so the replica would find the new leader up to two
// heartbeats after its election. The consumer's leader-elected advisory
// makes it pull at once: a new Consume starts, and the old one drains (the
// envelopes it holds still reach the pool). A pull that finds no leader
// (no responders) is made again in retryNoLeader the same way.
type consuming struct {
	start func(p int, failed func(error)) (jetstream.ConsumeContext, error)
	log   *slog.Logger

	mu      sync.Mutex
	current []jetstream.ConsumeContext
	retired []jetstream.ConsumeContext
	stopped bool
	subs    []*nats.Subscription
	// retrying is set, per partition, while its timer is to restart it.
	retrying []atomic.Bool
	timers   []*time.Timer
}

// retryNoLeader is how soon a pull that found no consumer leader (no
// responders, during an election) is made again.
const retryNoLeader = 250 * time.Millisecond

// consume starts pulling from every partition's consumer of group with
// start, and follows the consumers' leader elections on nc. It returns an
// error when a Consume or a subscription fails, having stopped what it
// started.
// start is given the function its Consume's error handler calls.
func consume(nc *nats.Conn, group string, partitions int, start func(p int, failed func(error)) (jetstream.ConsumeContext, error), log *slog.Logger) (*consuming, error) {
	c := &consuming{start: start, log: log, retrying: make([]atomic.Bool, partitions), timers: make([]*time.Timer, partitions)}
	for p := range partitions {
		cc, err := start(p, func(err error) { c.failed(p, err) })
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("consuming: %w", err)
		}
		c.current = append(c.current, cc)
	}
	for p := range partitions {
		sub, err := nc.Subscribe(streams.ConsumerLeaderElectedSubject(group, p), func(*nats.Msg) { c.restart(p, true) })
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("subscribing to %s: %w", streams.ConsumerLeaderElectedSubject(group, p), err)
		}
		c.subs = append(c.subs, sub)
	}
	return c, nil
}

// failed is the Consume error handler of partition p: a pull that found no
// leader (the consumer's election is under way) is made again in
// retryNoLeader, not at the next missed heartbeat (seconds later).
func (c *consuming) failed(p int, err error) {
	if !errors.Is(err, nats.ErrNoResponders) || !c.retrying[p].CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if c.timers[p] == nil {
		c.timers[p] = time.AfterFunc(retryNoLeader, func() {
			c.retrying[p].Store(false)
			c.restart(p, false)
		})
	} else {
		c.timers[p].Reset(retryNoLeader)
	}
}

// restart pulls from partition p's consumer again, from its new leader:
// elected is set when its leader-elected advisory says there is one (a
// rare event, logged at info), and not when a pull found no leader.
func (c *consuming) restart(p int, elected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	cc, err := c.start(p, func(err error) { c.failed(p, err) })
	if err != nil {
		// The Consume running goes on: it pulls again at its next
		// missed heartbeat.
		c.log.Warn("pulling again from a consumer", "stream", streams.StreamName(p), "elected", elected, "err", err)
		return
	}
	if elected {
		c.log.Info("the consumer has a new leader; pulling from it", "stream", streams.StreamName(p))
	} else {
		c.log.Debug("no consumer leader was found; pulling again", "stream", streams.StreamName(p))
	}
	old := c.current[p]
	c.current[p] = cc
	old.Drain()
	// Keep the ones still draining, for stop to wait for.
	c.retired = slices.DeleteFunc(c.retired, func(r jetstream.ConsumeContext) bool {
		select {
		case <-r.Closed():
			return true
		default:
			return false
		}
	})
	c.retired = append(c.retired, old)
}

// stop stops following elections, drains every Consume and waits until
// each has closed: no envelope reaches the pool after it returns.
func (c *consuming) stop() {
	c.mu.Lock()
	c.stopped = true
	for _, t := range c.timers {
		if t != nil {
			t.Stop()
		}
	}
	for _, sub := range c.subs {
		_ = sub.Unsubscribe()
	}
	all := append(c.retired, c.current...)
	c.mu.Unlock()
	for _, cc := range all {
		cc.Drain()
	}
	for _, cc := range all {
		<-cc.Closed()
	}
}
