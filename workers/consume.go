package workers

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"

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
// envelopes it holds still reach the pool).
type consuming struct {
	start func(p int) (jetstream.ConsumeContext, error)
	log   *slog.Logger

	mu      sync.Mutex
	current []jetstream.ConsumeContext
	retired []jetstream.ConsumeContext
	stopped bool
	subs    []*nats.Subscription
}

// consume starts pulling from every partition's consumer of group with
// start, and follows the consumers' leader elections on nc. It returns an
// error when a Consume or a subscription fails, having stopped what it
// started.
func consume(nc *nats.Conn, group string, partitions int, start func(p int) (jetstream.ConsumeContext, error), log *slog.Logger) (*consuming, error) {
	c := &consuming{start: start, log: log}
	for p := range partitions {
		cc, err := start(p)
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("consuming: %w", err)
		}
		c.current = append(c.current, cc)
	}
	for p := range partitions {
		sub, err := nc.Subscribe(streams.ConsumerLeaderElectedSubject(group, p), func(*nats.Msg) { c.restart(p) })
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("subscribing to %s: %w", streams.ConsumerLeaderElectedSubject(group, p), err)
		}
		c.subs = append(c.subs, sub)
	}
	return c, nil
}

// restart pulls from partition p's consumer again, from its new leader.
func (c *consuming) restart(p int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	cc, err := c.start(p)
	if err != nil {
		// The Consume running goes on: it pulls again at its next
		// missed heartbeat.
		c.log.Warn("consuming again after a leader election", "stream", streams.StreamName(p), "err", err)
		return
	}
	c.log.Debug("consuming again after a leader election", "stream", streams.StreamName(p))
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
