package gateway

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/streams"
)

// How a gateway drains. Drain refuses new requests and ends the event
// streams that carry no answers (session GET streams, subscriptions/listen
// streams) at once. An HTTP+SSE stream carries the answers to its
// session's calls: it stays open until the calls its session posted here
// are answered, then ends (drainHTTPSSE).

// inFlight counts work in progress, and wakes a waiter when none is left.
// Its zero value is ready to use.
type inFlight struct {
	n    atomic.Int64
	once sync.Once
	// none holds a token once n has dropped to zero.
	none chan struct{}
}

func (f *inFlight) ch() chan struct{} {
	f.once.Do(func() { f.none = make(chan struct{}, 1) })
	return f.none
}

func (f *inFlight) add() { f.n.Add(1) }

func (f *inFlight) done() {
	if f.n.Add(-1) == 0 {
		f.wake()
	}
}

func (f *inFlight) wake() {
	select {
	case f.ch() <- struct{}{}:
	default:
	}
}

// wait waits until nothing is in flight or one of stop is closed, and
// reports whether nothing is.
func (f *inFlight) wait(stop ...<-chan struct{}) bool {
	var s0, s1 <-chan struct{}
	if len(stop) > 0 {
		s0 = stop[0]
	}
	if len(stop) > 1 {
		s1 = stop[1]
	}
	for f.n.Load() > 0 {
		select {
		case <-f.ch():
			if f.n.Load() == 0 {
				f.wake() // for any other waiter
			}
		case <-s0:
			return f.n.Load() == 0
		case <-s1:
			return f.n.Load() == 0
		}
	}
	return true
}

// sseEndHeader marks the message a draining gateway publishes on an
// HTTP+SSE session's subject, after the answers to the calls the session
// posted here: the stream ends when it comes, so that every answer
// published before it has been written (NATS keeps one connection's
// messages to a subscriber in order).
const sseEndHeader = "Mcp-Gateway-Stream-End"

// drainHTTPSSE ends the HTTP+SSE stream es of sess on a draining gateway
// once the calls the session posted here are answered: their answers stay
// on their way to the stream, and the stream ends after them. It gives up
// when the session ends or the gateway closes; Shutdown bounds the wait,
// answering the calls still waiting at its deadline.
func (g *Gateway) drainHTTPSSE(es *eventStream, sess *session) {
	if !g.start(func(ctx context.Context) {
		if !sess.sseCalls.wait(sess.gone, ctx.Done()) {
			return // the session ended, or the gateway closes: the stream is closed
		}
		m := nats.NewMsg(streams.SSESubject(sess.id))
		m.Header.Set(sseEndHeader, "1")
		if err := g.nc.PublishMsg(m); err != nil {
			es.close()
		}
	}) {
		es.close()
	}
}
