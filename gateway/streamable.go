package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcpstream/mcpstream/schema"
)

// The Streamable HTTP transport, on one endpoint for every revision: POST
// carries one JSON-RPC message (or, in revision 2025-03-26, a batch), GET
// opens the session's event stream, DELETE ends the session. A POST's
// message is parsed here, checked against its revision's rules (a
// session's, or the stateless revision's headers and _meta) and handed to
// dispatch with an httpReplier for its answer.

// ServeHTTP serves the MCP endpoint over Streamable HTTP, behind the
// gateway's front (metrics, CORS, the origin check, authentication).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.front(w, r, g.serveStreamable)
}

// serveStreamable is ServeHTTP behind the front.
func (g *Gateway) serveStreamable(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && schema.IsStateless(r.Header.Get(schema.HeaderProtocolVersion)) {
		// The stateless revision has no GET stream and no session to end.
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, nil, schema.Errorf(schema.CodeInvalidRequest,
			"revision %s serves POST only", schema.Revision20260728))
		return
	}
	switch r.Method {
	case http.MethodPost:
		g.post(w, r)
	case http.MethodGet:
		g.get(w, r)
	case http.MethodDelete:
		g.delete(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, nil, schema.Errorf(schema.CodeInvalidRequest, "method %s not allowed", r.Method))
	}
}

// post serves one POST: one message, or a batch (batch.go).
func (g *Gateway) post(w http.ResponseWriter, r *http.Request) {
	if !requireJSON(w, r) {
		return
	}
	jsonOK, sseOK := accepts(r)
	if !jsonOK && !sseOK {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow application/json or text/event-stream"))
		return
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return
	}
	defer g.bodies.give(len(body))
	if isBatch(body) {
		noteMethod(w, methodBatch)
		g.postBatch(w, r, body, sseOK && !jsonOK)
		return
	}
	msg, rpcErr := schema.DecodeMessage(body)
	if rpcErr != nil {
		writeError(w, http.StatusBadRequest, nil, rpcErr)
		return
	}
	noteMessage(w, msg)
	// The message's exchange and its replier, in one allocation.
	xh := &struct {
		x exchange
		h httpReplier
	}{x: exchange{msg: msg, raw: body, r: r, w: w}}
	x := &xh.x
	if meta, ok := schema.ParseRequestMeta(msg.Params); ok && isStateless(msg, meta, r) {
		if !g.openStateless(w, x, meta) {
			return
		}
	} else if !g.openSession(w, x) {
		return
	}
	h := &xh.h
	*h = httpReplier{g: g, w: w, id: msg.ID, sess: x.sess, sseOK: sseOK, sseOnly: sseOK && !jsonOK, stateless: x.stateless}
	if x.stateless {
		h.hints = cacheHints(msg.Method)
	}
	x.out = h
	g.dispatch(r.Context(), x)
}

// openSession prepares a message of a session revision for dispatch, or
// answers it and returns false: its MCP-Protocol-Version header must pass
// sessionVersionOK, and every message but an initialize request must name
// its session (requireSession).
func (g *Gateway) openSession(w http.ResponseWriter, x *exchange) bool {
	if !sessionVersionOK(w, x.r, x.msg.ID) {
		return false
	}
	if x.msg.Kind() == schema.KindRequest && x.msg.Method == schema.MethodInitialize {
		return true // it creates the session
	}
	sess, ok := g.requireSession(w, x.r, x.msg.ID)
	x.sess = sess
	return ok
}

// sessionVersionOK applies the session revisions' rule for the
// MCP-Protocol-Version header to a Streamable HTTP request that is not
// served statelessly, whatever its method: a POST of one message
// (initialize included) or of a batch, GET, DELETE. A header naming
// anything but a session revision (an unknown or malformed value,
// 2024-11-05, whose transport is HTTP+SSE, or 2026-07-28, which has no
// sessions) is answered 400 with -32600 listing the session revisions, id
// being the message's (nil but for one message), and it returns false. A
// request without the header goes on: the spec then has the server assume
// 2025-03-26, and the gateway serves the revision the session negotiated.
// The stateless revision has its own rule (checkHeaders).
func sessionVersionOK(w http.ResponseWriter, r *http.Request, id schema.ID) bool {
	v := r.Header.Get(schema.HeaderProtocolVersion)
	if v == "" || schema.IsSessionRevision(v) {
		return true
	}
	writeError(w, http.StatusBadRequest, id, schema.Errorf(schema.CodeInvalidRequest,
		"Unsupported protocol version: %s (supported: %s)", v, strings.Join(schema.SessionRevisions, ", ")))
	return false
}

// requireSession finds the session named by the Mcp-Session-Id header:
// missing, HTTP 400; unknown, ended or expired, HTTP 404.
func (g *Gateway) requireSession(w http.ResponseWriter, r *http.Request, id schema.ID) (*session, bool) {
	sid := r.Header.Get(schema.HeaderSessionID)
	if sid == "" {
		writeError(w, http.StatusBadRequest, id, schema.Errorf(schema.CodeInvalidRequest, "Mcp-Session-Id header is required"))
		return nil, false
	}
	sess, err := g.sessions.get(r.Context(), sid)
	if errors.Is(err, errNoSession) {
		writeError(w, http.StatusNotFound, id, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
		return nil, false
	}
	if err != nil {
		g.log.ErrorContext(r.Context(), "loading session", "err", err)
		writeError(w, http.StatusServiceUnavailable, id, errSessionStore)
		return nil, false
	}
	if g.otherPrincipal(r, sess.Principal) || sess.httpSSE() {
		// Another principal's session, or one of the HTTP+SSE transport:
		// as good as unknown here.
		writeError(w, http.StatusNotFound, id, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
		return nil, false
	}
	return sess, true
}

// get opens the session's event stream: list changes and updates of the
// resources it subscribed to, with keep-alive comments in between; with
// Last-Event-ID, what it missed first (events.go). A session has one
// stream on a gateway: a new GET replaces the one open here, which is
// closed (hijackStream), since a client that lost its connection may
// still hold it as far as the server can tell. A stream ends when its
// client goes, another GET replaces it, the session is deleted or the
// gateway drains. With Config.MaxEventStreams streams open a GET is
// refused with 503, unless it replaces its session's stream here. Event
// streams run on hijacked connections only: on one that cannot be
// hijacked (HTTP/2, or a wrapping ResponseWriter that hides Hijack) a GET
// is answered 405, as the spec has a server that offers no stream answer,
// and the client goes on without one.
func (g *Gateway) get(w http.ResponseWriter, r *http.Request) {
	if _, sseOK := accepts(r); !sseOK || len(r.Header.Values("Accept")) == 0 {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow text/event-stream"))
		return
	}
	if !sessionVersionOK(w, r, nil) {
		return
	}
	sess, ok := g.requireSession(w, r, nil)
	if !ok {
		return
	}
	// A GET counts against its principal's rate as a request does: each
	// replaces the session's stream here, and one resuming reads the
	// events stream through a consumer of its own.
	if !g.withinRate(r.Context(), &exchange{r: r, w: w, sess: sess, out: &httpReplier{g: g, w: w, sess: sess}}) {
		return
	}
	if sess.stream.Load() == nil && g.streamsFull() {
		writeError(w, http.StatusServiceUnavailable, nil, g.overloaded(refusedStreamLimit))
		return
	}
	sess.openStreams.Add(1) // the session stays cached while its stream opens
	order := g.eventStreams.nextGET()
	first, last := sseHead, uint64(0)
	if after, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		// Resuming: what the client missed comes first, from the events
		// stream; a catch-up after the stream is published closes the gap.
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		missed, upto, err := g.replay(ctx, sess, after)
		cancel()
		if err != nil {
			g.log.WarnContext(r.Context(), "replaying events", "err", err)
		}
		first, last = append([]byte{}, sseHead...), upto
		for _, ev := range missed {
			first = append(first, ev.b...)
		}
	}
	es, ok := g.hijackStream(w, r, sess, first, last, order)
	if !ok {
		sess.openStreams.Add(-1)
		w.Header().Set("Allow", "POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, nil, schema.Errorf(schema.CodeInvalidRequest,
			"the GET event stream needs an HTTP/1.1 connection"))
		return
	}
	if last > 0 {
		g.catchUp(r.Context(), es, last)
	}
}

// delete ends the session (HTTP 204): it leaves the session bucket, so
// every gateway forgets it and ends its GET stream.
func (g *Gateway) delete(w http.ResponseWriter, r *http.Request) {
	if !sessionVersionOK(w, r, nil) {
		return
	}
	sess, ok := g.requireSession(w, r, nil) // only its own principal may end it
	if !ok {
		return
	}
	err := g.sessions.remove(r.Context(), sess.id)
	switch {
	case errors.Is(err, errNoSession):
		writeError(w, http.StatusNotFound, nil, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
	case err != nil:
		g.log.ErrorContext(r.Context(), "deleting session", "err", err)
		writeError(w, http.StatusServiceUnavailable, nil, errSessionStore)
	default:
		g.obs.sessionEnded(r.Context(), sess)
		w.WriteHeader(http.StatusNoContent)
	}
}
