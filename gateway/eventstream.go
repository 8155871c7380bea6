package gateway

import (
	"context"
	"errors"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpstream/mcpstream/auth"
)

// Event streams are the long-lived SSE responses the gateway holds: a
// session's GET stream, a subscriptions/listen stream, and an HTTP+SSE
// transport's stream. (A POST answered with SSE is an SSE response:
// httpReplier.) Each runs on a hijacked connection.

// eventStream is an event stream on a hijacked connection. A stream costs
// a connection, this struct and one small goroutine blocked in Read (to
// see the client go at once): net/http's per-connection goroutine and
// buffers are released when the handler returns. Writes are serialized
// and bounded by a write deadline: the kernel's socket buffer is the
// stream's buffer, and a client that stops reading is cut off.
type eventStream struct {
	conn   net.Conn
	sess   *session
	listen *listenFilter // set on a subscriptions/listen stream
	mu     sync.Mutex    // serializes writes
	closed atomic.Bool
	// lastSeq is the events-stream sequence of the last event written
	// (guarded by mu): replayed and live events are each written once.
	lastSeq uint64
	// order numbers a session's GET stream by its request's arrival
	// (eventStreamSet.nextGET): of two streams of a session, the later
	// GET's delivers, whichever is ready first.
	order uint64
	// drain is what Drain does to the stream: nil to end it at once, as a
	// stream that carries no answers; an HTTP+SSE stream's ends after the
	// answers to its session's calls (drainHTTPSSE).
	drain func()
	// over is closed once the stream has ended and is no longer open
	// (Shutdown waits for it).
	over chan struct{}
	// credential is the Authorization header the stream was opened with,
	// and principal what it authenticated as (both empty without
	// Config.Auth): checked again at every keep-alive (stillAuthorized).
	credential, principal string
}

// writeSeq writes b, the event of sequence seq, unless it was written.
func (s *eventStream) writeSeq(seq uint64, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.lastSeq || s.closed.Load() {
		return nil
	}
	s.lastSeq = seq
	return s.writeLocked(b)
}

// writeTimeout bounds one write to an event stream.
const writeTimeout = 2 * time.Second

// write sends b, or closes the stream if the client does not take it in time.
func (s *eventStream) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return net.ErrClosed
	}
	return s.writeLocked(b)
}

// writeLocked writes b under the write deadline, closing the stream if it
// fails; the caller holds mu.
func (s *eventStream) writeLocked(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(b); err != nil {
		s.close()
		return err
	}
	return nil
}

// close closes the stream's connection at once, without waiting for mu: a
// write in progress fails rather than holding the closer for up to
// writeTimeout (a stream replaced because its client vanished may be
// blocked on a full socket buffer), and no write starts after it.
func (s *eventStream) close() {
	if s.closed.CompareAndSwap(false, true) {
		_ = s.conn.Close()
	}
}

const streamShards = 32

// eventStreamSet holds the open event streams of a gateway.
type eventStreamSet struct {
	seed   maphash.Seed
	shards [streamShards]struct {
		mu sync.Mutex
		m  map[*eventStream]struct{}
	}
	open atomic.Int64
	// gets numbers session GETs as they come (nextGET).
	gets atomic.Uint64
}

func newEventStreamSet() *eventStreamSet {
	s := &eventStreamSet{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[*eventStream]struct{}{}
	}
	return s
}

func (s *eventStreamSet) shard(es *eventStream) int {
	return int(maphash.Comparable(s.seed, es) % streamShards)
}

// nextGET numbers a session GET that arrives, for its stream's order.
func (s *eventStreamSet) nextGET() uint64 { return s.gets.Add(1) }

func (s *eventStreamSet) add(es *eventStream) {
	sh := &s.shards[s.shard(es)]
	sh.mu.Lock()
	sh.m[es] = struct{}{}
	sh.mu.Unlock()
	s.open.Add(1)
}

func (s *eventStreamSet) remove(es *eventStream) {
	sh := &s.shards[s.shard(es)]
	sh.mu.Lock()
	_, ok := sh.m[es]
	delete(sh.m, es)
	sh.mu.Unlock()
	if ok {
		s.open.Add(-1)
	}
}

// each calls fn for every open stream (fn must not add or remove).
func (s *eventStreamSet) each(fn func(*eventStream)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		list := make([]*eventStream, 0, len(sh.m))
		for es := range sh.m {
			list = append(list, es)
		}
		sh.mu.Unlock()
		for _, es := range list {
			fn(es)
		}
	}
}

// streamsFull reports whether Config.MaxEventStreams event streams are
// open here. A request that would open another (a session's GET, a
// subscriptions/listen, a GET of the HTTP+SSE transport) is then refused
// with the overload answer for refusedStreamLimit: 503, Retry-After and
// -32000. Streams opening at once may pass the bound by as many.
func (g *Gateway) streamsFull() bool {
	return g.eventStreams.open.Load() >= int64(g.cfg.MaxEventStreams)
}

var sseHead = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n")

var keepAliveEvent = []byte(": keep-alive\n\n")

// hijackStream takes over the connection of a validated GET and serves the
// session's event stream on it, starting with first (the response head and
// any replayed events, up to lastSeq); order is its GET's (nextGET). Once
// first is written, the stream delivers the session's events on this
// gateway and the stream it replaces, if any, is closed: a client that
// resumes after losing its connection without a FIN (a network switch, a
// NAT timeout, a laptop's sleep) is served at once rather than after the
// kernel gives up on the old connection, and what the old stream would
// have carried comes with Last-Event-ID. Should a later GET's stream have
// taken over first, this one is closed instead: the client's latest GET
// is the one served. The caller counted the stream in sess.openStreams;
// its end takes it off. It reports false, having written nothing, when the
// connection cannot be hijacked (HTTP/2, or a response writer without it):
// the caller then takes the count off and refuses the GET.
func (g *Gateway) hijackStream(w http.ResponseWriter, r *http.Request, sess *session, first []byte, lastSeq, order uint64) (*eventStream, bool) {
	es := &eventStream{sess: sess, lastSeq: lastSeq, order: order}
	ok := g.hijack(w, r, es, first, func() {
		for {
			old := sess.stream.Load()
			if old != nil && old.order > es.order {
				es.close()
				return
			}
			if sess.stream.CompareAndSwap(old, es) {
				if old != nil {
					old.close()
				}
				return
			}
		}
	}, func() {
		sess.stream.CompareAndSwap(es, nil)
		sess.openStreams.Add(-1)
	})
	return es, ok
}

// hijack takes over the connection of a validated request and serves es on
// it: first (the response head, and the first events) goes out before
// anything else (keep-alives, notifications) can write, though the stream
// is published at once, so that nothing announced after the client reads
// first is missed; then started runs, and ended once the stream is over.
// It reports false when the connection cannot be hijacked.
func (g *Gateway) hijack(w http.ResponseWriter, r *http.Request, es *eventStream, first []byte, started, ended func()) bool {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	if g.cfg.Auth != nil {
		es.credential, es.principal = r.Header.Get("Authorization"), g.principal(r)
	}
	es.conn = conn
	es.over = make(chan struct{})
	whenEnded := ended
	ended = func() {
		whenEnded()
		close(es.over)
	}
	first = withResponseHeaders(first, w.Header())
	if brw.Reader.Buffered() > 0 { // a pipelined request: nothing may follow a stream
		_ = conn.Close()
		ended()
		return true
	}
	es.mu.Lock() // writers wait for first
	g.eventStreams.add(es)
	err = es.writeLocked(first)
	es.mu.Unlock()
	if err != nil {
		g.eventStreams.remove(es)
		ended()
		return true
	}
	started()
	// The one goroutine of a stream: the client sends nothing on an event
	// stream, so a read returns only when it goes (or misbehaves), or when
	// the stream is closed here (session ended, gateway draining or
	// closing).
	if !g.start(func(context.Context) {
		var b [1]byte
		_, _ = io.ReadFull(conn, b[:])
		es.close()
		g.eventStreams.remove(es)
		ended()
	}) {
		es.close() // the gateway closed meanwhile
		g.eventStreams.remove(es)
		ended()
		return true
	}
	select {
	case <-es.sess.gone: // the session ended while the stream was being set up
		es.close()
	case <-g.drain: // Drain ran before the stream was registered
		drainStream(es)
	default:
	}
	return true
}

// drainStream ends es for a draining gateway: at once, unless it carries
// answers still to come (eventStream.drain).
func drainStream(es *eventStream) {
	if es.drain != nil {
		es.drain()
		return
	}
	es.end()
}

// keepAlive writes a comment on every open event stream each
// Config.KeepAlive until ctx ends, so proxies keep idle streams open and
// dead clients are found; and keeps the session of each (sessions.keep),
// keepsPerTick at most a tick, so that a client connected to its stream
// but sending nothing keeps its session.
func (g *Gateway) keepAlive(ctx context.Context) {
	t := time.NewTicker(g.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			kept := 0
			g.eventStreams.each(func(es *eventStream) {
				if !g.stillAuthorized(es) {
					es.close() // its reader sees it, and ends it
					return
				}
				_ = es.write(keepAliveEvent)
				if sess := es.sess; sess != nil && sess.id != "" && kept < keepsPerTick && g.sessions.due(sess) {
					g.sessions.keep(ctx, sess)
					kept++
				}
			})
		}
	}
}

// keepsPerTick bounds the sessions keepAlive stores again in one tick:
// sessions due together (loaded together after a restart) are spread over
// ticks rather than holding up the keep-alives of every stream.
const keepsPerTick = 100

// stillAuthorized reports whether the credential es was opened with still
// authenticates as the principal it did then: a stream outlives the
// request that opened it, and an API key revoked (its file reloaded) or a
// token expired since ends its streams at the next keep-alive rather than
// never. A failure that is not a refusal (an *auth.Error) keeps the
// stream. A stream opened without a credential, or without Config.Auth,
// is not checked.
func (g *Gateway) stillAuthorized(es *eventStream) bool {
	if g.cfg.Auth == nil || es.credential == "" {
		return true
	}
	principal, err := g.cfg.Auth.Authenticate(&http.Request{Header: http.Header{"Authorization": {es.credential}}})
	var refused *auth.Error
	switch {
	case errors.As(err, &refused):
		g.log.Info("closing an event stream whose credential no longer holds", "principal", es.principal, "status", refused.Status, "error", refused.Code)
		return false
	case err == nil && principal != es.principal:
		g.log.Info("closing an event stream whose credential names another principal now", "principal", es.principal)
		return false
	}
	return true
}
