package gateway

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/streams"
)

// elections tells the requests waiting to publish to a request stream
// that it has a new leader. While a stream has no leader (the election
// after its leader's node died takes 4-9 s), a publish is refused (no
// responders) or goes unacknowledged, and publishAndWait tries again
// after a backoff or when its acknowledgement is overdue: either can
// come up to seconds after the election. The leader-elected advisory
// ends those waits at once.
type elections struct {
	mu sync.Mutex
	// next holds, per partition, the channel closed at its stream's next
	// election.
	next map[int]chan struct{}
}

// wait returns a channel closed when partition p's stream next gets a
// leader. Take it before publishing, so that an election in between is
// not missed.
func (e *elections) wait(p int) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.next == nil {
		e.next = map[int]chan struct{}{}
	}
	ch, ok := e.next[p]
	if !ok {
		ch = make(chan struct{})
		e.next[p] = ch
	}
	return ch
}

// elected wakes the waits of partition p.
func (e *elections) elected(p int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.next[p]; ok {
		close(ch)
		delete(e.next, p)
	}
}

// watchElections subscribes to the leader-elected advisories of every
// request stream. At one, the requests of that partition still waiting
// for the stream's acknowledgement, and those waiting to publish again,
// publish at once; the stream drops the copies it has by their message id.
// Close ends the subscriptions.
func (g *Gateway) watchElections() error {
	for p := range g.topo.Partitions {
		sub, err := g.nc.Subscribe(streams.LeaderElectedSubject(p), func(*nats.Msg) {
			g.log.Info("request stream has a new leader; publishing again what it did not acknowledge", "stream", streams.StreamName(p))
			g.router.elected(p)
			g.elections.elected(p)
		})
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", streams.LeaderElectedSubject(p), err)
		}
		g.subs = append(g.subs, sub)
	}
	return nil
}
