package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// The HTTP+SSE transport of revision 2024-11-05: the client opens an event
// stream with GET; its first event, "endpoint", names the URL to POST
// messages to (with the session's id); every POST is accepted at once (202)
// and its answer, like the server's notifications, comes as a "message"
// event on the stream. The stream is the session: it ends with it.
//
// A POST may reach any gateway: its messages go to dispatch with an
// sseReplier, which publishes the answers on the session's core NATS
// subject (streams.SSESubject), to which the gateway holding the stream
// listens.

// HTTPSSE returns the handler of the HTTP+SSE transport, to mount on the
// stream's path and on messagesPath (the path POSTs go to, as named in the
// endpoint event), behind the gateway's front (metrics, CORS, the origin
// check, authentication). [Gateway.Mount] mounts it on /sse and /messages.
func (g *Gateway) HTTPSSE(messagesPath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.front(w, r, func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
				g.sseOpen(w, r, messagesPath)
			case http.MethodPost:
				g.ssePost(w, r)
			default:
				w.Header().Set("Allow", "GET, POST")
				writeError(w, http.StatusMethodNotAllowed, nil, schema.Errorf(schema.CodeInvalidRequest, "method %s not allowed", r.Method))
			}
		})
	})
}

// sseOpen starts a session and its stream. A draining gateway, or one
// with Config.MaxEventStreams streams open, refuses it with 503.
func (g *Gateway) sseOpen(w http.ResponseWriter, r *http.Request, messagesPath string) {
	if _, sseOK := accepts(r); !sseOK {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow text/event-stream"))
		return
	}
	if g.draining() {
		writeError(w, http.StatusServiceUnavailable, nil, g.overloaded(refusedDraining))
		return
	}
	if g.streamsFull() { // before a session is made for the stream
		writeError(w, http.StatusServiceUnavailable, nil, g.overloaded(refusedStreamLimit))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	sess, err := g.sessions.create(ctx, sessionRecord{Revision: schema.Revision20241105, Principal: g.principal(r),
		CreatedAt: time.Now().UTC(), Gateway: g.cfg.ID, Transport: transportSSE, CallMarks: true})
	cancel()
	if err != nil {
		g.log.Error("creating session", "err", err)
		writeError(w, http.StatusServiceUnavailable, nil, errSessionStore)
		return
	}
	sess.openStreams.Add(1)
	es := &eventStream{sess: sess}
	es.drain = func() { g.drainHTTPSSE(es, sess) }
	var sub *nats.Subscription
	sub, err = g.nc.Subscribe(streams.SSESubject(sess.id), func(m *nats.Msg) {
		if len(m.Data) == 0 && m.Header.Get(sseEndHeader) != "" { // drained: every answer due is written
			es.close()
			return
		}
		if id := m.Header.Get(sseCallHeader); len(m.Data) == 0 && id != "" { // a POST's, for the drain
			sess.sseCallsAnywhere.heard(id, m.Header.Get(sseCallStateHeader) == sseCallAnswered)
			return
		}
		b := append(append([]byte(sseEvent), m.Data...), "\n\n"...)
		_ = es.write(b)
	})
	if err == nil {
		err = g.nc.Flush()
	}
	if err != nil {
		g.log.Error("subscribing for a session's messages", "err", err)
		writeError(w, http.StatusServiceUnavailable, nil, schema.Errorf(schema.CodeInternalError, "broker unavailable"))
		return
	}
	endpoint := messagesPath + "?sessionId=" + url.QueryEscape(sess.id)
	first := append(append([]byte{}, sseHead...), "event: endpoint\ndata: "+endpoint+"\n\n"...)
	ended := func() {
		_ = sub.Unsubscribe()
		sess.stream.CompareAndSwap(es, nil)
		sess.openStreams.Add(-1)
		// The session ends with its stream, before the gateway closes
		// (Close waits for this), even when Close is what ended it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(g.ctx), storeTimeout)
		defer cancel()
		if err := g.sessions.remove(ctx, sess.id); err != nil && !errors.Is(err, errNoSession) {
			g.log.Warn("ending an HTTP+SSE session", "err", err)
		}
		g.obs.sessionEnded(ctx, sess)
	}
	if !g.hijack(w, r, es, first, func() { sess.stream.Store(es) }, ended) {
		ended()
		writeError(w, http.StatusHTTPVersionNotSupported, nil, schema.Errorf(schema.CodeInvalidRequest, "the HTTP+SSE transport needs an HTTP/1.1 connection"))
	}
}

// ssePost takes the messages of a POST for a session (one, or a batch of
// at most MaxBatch): answered at once with 202, its notifications and
// responses then handled in order, and its requests served by dispatch
// (runBatch, BatchConcurrency at a time) in a goroutine the gateway owns,
// their answers sent on the stream.
func (g *Gateway) ssePost(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	sess, err := g.sessions.get(ctx, r.URL.Query().Get("sessionId"))
	cancel()
	if err != nil || !sess.httpSSE() || g.otherPrincipal(r, sess.Principal) {
		writeError(w, http.StatusNotFound, nil, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
		return
	}
	if !requireJSON(w, r) {
		return
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return
	}
	// The body is given back when the POST has been served: here, or
	// once the goroutine serving its requests is done.
	held := len(body)
	defer func() { g.bodies.give(held) }()
	parts := [][]byte{body}
	if isBatch(body) {
		var rpcErr *schema.Error
		if parts, rpcErr = schema.SplitBatch(body); rpcErr != nil {
			writeError(w, http.StatusBadRequest, nil, rpcErr)
			return
		}
		if g.batchTooLarge(w, len(parts)) {
			return
		}
	}
	msgs := make([]*schema.Message, 0, len(parts))
	for _, part := range parts {
		msg, rpcErr := schema.DecodeMessage(part)
		if rpcErr != nil {
			writeError(w, http.StatusBadRequest, nil, rpcErr)
			return
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) == 1 {
		noteMessage(w, msgs[0])
	} else {
		noteMethod(w, methodBatch)
	}
	if hasRequest(msgs) {
		// Counted before the check, so that a draining gateway either
		// refuses the POST or keeps the stream open for its answers.
		sess.sseCalls.add()
		if g.draining() {
			sess.sseCalls.done()
			// Its requests are refused; its notifications and answers to
			// workers' requests (which calls in flight wait for) are taken.
			for i, msg := range msgs {
				if msg.Kind() != schema.KindRequest {
					g.dispatch(r.Context(), &exchange{msg: msg, raw: parts[i], sess: sess, r: r, out: &sseReplier{g: g, sess: sess, id: msg.ID}})
				}
			}
			var id schema.ID
			if len(msgs) == 1 {
				id = msgs[0].ID
			}
			writeError(w, http.StatusServiceUnavailable, id, g.overloaded(refusedDraining))
			return
		}
	}
	var call string
	if hasRequest(msgs) && sess.CallMarks {
		call = g.sseCallMarker(sess, "", sseCallPosted)
	}
	w.WriteHeader(http.StatusAccepted)
	var requests []*exchange
	for i, msg := range msgs {
		x := &exchange{msg: msg, raw: parts[i], sess: sess, r: r, out: &sseReplier{g: g, sess: sess, id: msg.ID}, admitted: true}
		if msg.Kind() != schema.KindRequest {
			g.dispatch(r.Context(), x)
			continue
		}
		requests = append(requests, x)
	}
	if len(requests) == 0 {
		return
	}
	n := held
	if g.start(func(ctx context.Context) {
		defer g.bodies.give(n)
		defer sess.sseCalls.done()
		g.runBatch(ctx, requests, g.cfg.CallTimeout, nil)
		g.sseCallAnswered(sess, call) // after the answers, on the same connection
	}) {
		held = 0
	} else {
		sess.sseCalls.done()
		g.sseCallAnswered(sess, call)
	}
}

// sseCallAnswered marks the POST call answered, if it was marked taken.
func (g *Gateway) sseCallAnswered(sess *session, call string) {
	if call != "" {
		g.sseCallMarker(sess, call, sseCallAnswered)
	}
}

// The headers of the markers a gateway publishes on an HTTP+SSE
// session's subject for each POST that holds requests: when it takes the
// POST (posted), and once every answer to it is published (answered),
// the POST named by sseCallHeader. The gateway holding the session's
// stream writes neither to the client; when it drains, it keeps the
// stream open until the POSTs it heard posted, to whichever gateway, are
// answered (drainHTTPSSE), so that answers coming from other gateways
// are not lost with the stream.
const (
	sseCallHeader      = "Mcp-Gateway-Call"
	sseCallStateHeader = "Mcp-Gateway-Call-State"
	sseCallPosted      = "posted"
	sseCallAnswered    = "answered"
)

// sseCallMarker publishes a marker of the POST call (a new one's id when
// empty) of sess in state, and returns the POST's id.
func (g *Gateway) sseCallMarker(sess *session, call, state string) string {
	if call == "" {
		call = g.cfg.ID + "." + strconv.FormatUint(g.sseCallSeq.Add(1), 10)
	}
	m := nats.NewMsg(streams.SSESubject(sess.id))
	m.Header.Set(sseCallHeader, call)
	m.Header.Set(sseCallStateHeader, state)
	if err := g.nc.PublishMsg(m); err != nil {
		g.log.Warn("passing a call's marker to an HTTP+SSE stream", "err", err)
	}
	return call
}

// sseCallsHeard are the POSTs of an HTTP+SSE session that its stream's
// holder heard posted and not yet answered, by id. A gateway that dies
// between the two markers leaves its POST here until the session ends;
// a drain waits for it until Shutdown's deadline at most.
type sseCallsHeard struct {
	mu      sync.Mutex
	open    map[string]struct{}
	changed chan struct{} // a token at each answer
}

// heard takes in a marker: call posted, or answered.
func (h *sseCallsHeard) heard(call string, answered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.open, h.changed = map[string]struct{}{}, make(chan struct{}, 1)
	}
	if !answered {
		h.open[call] = struct{}{}
		return
	}
	delete(h.open, call)
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// pending returns the POSTs heard posted and not yet answered.
func (h *sseCallsHeard) pending() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	calls := make([]string, 0, len(h.open))
	for call := range h.open {
		calls = append(calls, call)
	}
	return calls
}

// wait waits until every POST of calls has been answered, or one of stop
// is closed, and reports whether they were. POSTs heard since calls were
// taken are not waited for: a client posting on through other gateways
// does not hold a draining gateway's stream open.
func (h *sseCallsHeard) wait(calls []string, stop0, stop1 <-chan struct{}) bool {
	for {
		h.mu.Lock()
		left := slices.ContainsFunc(calls, func(call string) bool { _, ok := h.open[call]; return ok })
		changed := h.changed
		h.mu.Unlock()
		if !left {
			return true
		}
		select {
		case <-changed:
		case <-stop0:
			return false
		case <-stop1:
			return false
		}
	}
}

// hasRequest reports whether msgs hold a request.
func hasRequest(msgs []*schema.Message) bool {
	for _, msg := range msgs {
		if msg.Kind() == schema.KindRequest {
			return true
		}
	}
	return false
}

// sseReplier answers a message of an HTTP+SSE session on the session's
// stream, wherever it is held: every answer and note is published on the
// session's subject.
type sseReplier struct {
	g    *Gateway
	sess *session
	id   schema.ID
}

func (s *sseReplier) result(body resultBody) {
	b := schema.AppendResultFunc(nil, s.id, body.appendTo)
	if b == nil {
		b = schema.AppendError(nil, s.id, errMalformedResult)
	}
	s.send(b)
}

func (s *sseReplier) fail(_ int, e *schema.Error) { s.send(schema.AppendError(nil, s.id, e)) }

func (s *sseReplier) note(rep *schema.Reply) {
	if b := s.g.clientMessage(s.sess, rep, true); b != nil {
		s.send(b)
	}
}

func (s *sseReplier) accepted() {}

// send publishes one JSON-RPC message for the session's stream.
func (s *sseReplier) send(b []byte) {
	if err := s.g.nc.Publish(streams.SSESubject(s.sess.id), b); err != nil {
		s.g.log.Warn("passing a message to an HTTP+SSE stream", "err", err)
	}
}

// transportSSE marks a session of the HTTP+SSE transport.
const transportSSE = "sse"

// httpSSE reports whether the session lives on the HTTP+SSE transport.
func (s *session) httpSSE() bool { return s.Transport == transportSSE }
