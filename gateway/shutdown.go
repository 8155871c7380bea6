package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
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
// once the calls the session posted here are answered, and those it had
// posted to other gateways when the drain began (sseCallsHeard): their
// answers stay on their way to the stream, and the stream ends after
// them. It gives up when the session ends or the gateway closes; Shutdown
// bounds the wait, answering the calls still waiting at its deadline.
func (g *Gateway) drainHTTPSSE(es *eventStream, sess *session) {
	elsewhere := sess.sseCallsAnywhere.pending()
	if !g.start(func(ctx context.Context) {
		if !sess.sseCalls.wait(sess.gone, ctx.Done()) || !sess.sseCallsAnywhere.wait(elsewhere, sess.gone, ctx.Done()) {
			return // the session ended, or the gateway closes: the stream is closed
		}
		m := nats.NewMsg(streams.SSESubject(sess.id))
		m.Header.Set(sseEndHeader, "1")
		if err := g.nc.PublishMsg(m); err != nil {
			es.close()
			return
		}
		// With NATS unreachable the marker waits in the connection's
		// buffer, and would hold the stream open for good: cutGrace past
		// Shutdown's deadline the stream ends without it.
		select {
		case <-es.over:
			return
		case <-ctx.Done():
			return
		case <-g.shutDown():
		}
		t := time.NewTimer(cutGrace)
		defer t.Stop()
		select {
		case <-es.over:
		case <-t.C:
			es.close()
		case <-ctx.Done():
		}
	}) {
		es.close()
	}
}

// Shutdown drains the gateway (Drain) and waits until every request in
// flight here has been answered and every event stream has ended, or ctx
// ends. Then the calls still waiting on workers are answered at once with
// -32000 (errShutDown; HTTP 503 and Retry-After where the response has
// not started), over whatever transport they came: a worker may still
// run them, and their clients may try them again elsewhere. Shutdown
// returns once those answers are written (within a few seconds: each
// write has its deadline), with ctx's error, or nil if nothing was cut.
// Call it before the http.Server's Shutdown, with the same deadline or a
// shorter one, so that the server finds every request answered; Close
// calls it with no time left if it was not called.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.Drain()
	if g.settle(ctx.Done()) {
		return nil
	}
	first := false
	g.cutOnce.Do(func() { close(g.cut); first = true })
	if !first {
		return ctx.Err() // an earlier Shutdown cut, and waited for, what was left
	}
	grace, cancel := context.WithTimeout(context.Background(), cutGrace)
	defer cancel()
	if !g.settle(grace.Done()) {
		g.log.Warn("requests still unanswered after the shutdown's deadline")
	}
	return ctx.Err()
}

// cutGrace bounds the wait, after Shutdown's deadline, for the answers of
// the calls it cut to be written.
const cutGrace = 5 * time.Second

// settle waits until no request is in flight and every event stream open
// has ended, or stop is closed; it reports whether they have.
func (g *Gateway) settle(stop <-chan struct{}) bool {
	if !g.calls.wait(stop) {
		return false
	}
	var open []*eventStream
	g.eventStreams.each(func(es *eventStream) { open = append(open, es) })
	for _, es := range open {
		select {
		case <-es.over:
		case <-stop:
			return false
		}
	}
	return true
}

// shutDown is closed once Shutdown's deadline has passed: the calls still
// waiting on workers are then answered with errShutDown.
func (g *Gateway) shutDown() <-chan struct{} { return g.cut }

// errShutDown answers a call still waiting on its worker when Shutdown's
// deadline passes (HTTP 503 where the response has not started).
var errShutDown = &schema.Error{Code: schema.CodeOverloaded,
	Message: "the gateway shut down before the worker answered; the call may have run",
	Data:    json.RawMessage(`{"reason":"gateway shut down","retryAfterMs":1000}`)}
