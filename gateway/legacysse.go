package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
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
// A POST may reach any gateway: the answer is published on the session's
// core NATS subject (streams.SSESubject), to which the gateway holding the
// stream listens.

// LegacySSE returns the handler of the HTTP+SSE transport, to mount on the
// stream's path and on messagesPath (the path POSTs go to, as named in the
// endpoint event). Every request is authenticated first (Config.Auth).
func (g *Gateway) LegacySSE(messagesPath string) http.Handler {
	serve := func(w http.ResponseWriter, r *http.Request) {
		r, ok := g.admit(w, r)
		if !ok {
			return
		}
		switch r.Method {
		case http.MethodGet:
			g.sseOpen(w, r, messagesPath)
		case http.MethodPost:
			g.ssePost(w, r)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, nil, schema.Errorf(schema.CodeInvalidRequest, "method %s not allowed", r.Method))
		}
	}
	return g.metrics.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.withCORS(w, r, serve) }))
}

// sseOpen starts a session and its stream.
func (g *Gateway) sseOpen(w http.ResponseWriter, r *http.Request, messagesPath string) {
	if _, sseOK := accepts(r); !sseOK {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow text/event-stream"))
		return
	}
	if g.refuseDraining(w, nil) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	sess, err := g.sessions.create(ctx, sessionRecord{Revision: schema.Revision20241105, Principal: g.principal(r),
		CreatedAt: time.Now().UTC(), Gateway: g.cfg.ID, Transport: transportSSE})
	cancel()
	if err != nil {
		g.log.Error("creating session", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, nil, schema.Errorf(schema.CodeInternalError, "session store unavailable"))
		return
	}
	sess.streaming.Store(true)
	es := &eventStream{sess: sess}
	var sub *nats.Subscription
	sub, err = g.nc.Subscribe(streams.SSESubject(sess.id), func(m *nats.Msg) {
		b := append(append([]byte("event: message\ndata: "), m.Data...), "\n\n"...)
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
		sess.streaming.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.sessions.remove(ctx, sess.id); err != nil && !errors.Is(err, errNoSession) {
			g.log.Warn("ending an HTTP+SSE session", "session", sess.id, "err", err)
		}
	}
	if !g.hijack(w, es, first, func() { sess.stream.Store(es) }, ended) {
		ended()
		writeError(w, http.StatusHTTPVersionNotSupported, nil, schema.Errorf(schema.CodeInvalidRequest, "the HTTP+SSE transport needs an HTTP/1.1 connection"))
	}
}

// ssePost takes a message for a session: answered at once with 202, and
// on the stream once served.
func (g *Gateway) ssePost(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	sess, err := g.sessions.get(ctx, r.URL.Query().Get("sessionId"))
	cancel()
	if err != nil || !sess.legacySSE() || g.otherPrincipal(r, sess.Principal) {
		writeError(w, http.StatusNotFound, nil, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
		return
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, nil, schema.Errorf(schema.CodeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(serverWriter(w), r.Body, g.cfg.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, nil, schema.Errorf(schema.CodeInvalidRequest, "request body exceeds %d bytes", g.cfg.MaxBody))
		return
	}
	if err := schema.CheckDepth(body, g.cfg.MaxDepth); err != nil {
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest, "JSON nested deeper than %d", g.cfg.MaxDepth))
		return
	}
	parts := [][]byte{body}
	if t := strings.TrimLeft(string(body), " \t\r\n"); strings.HasPrefix(t, "[") && json.Valid(body) {
		var rpcErr *schema.Error
		if parts, rpcErr = schema.SplitBatch(body); rpcErr != nil {
			writeError(w, http.StatusBadRequest, nil, rpcErr)
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
	w.WriteHeader(http.StatusAccepted)
	for i, msg := range msgs {
		if msg.Kind() != schema.KindRequest {
			g.notified(sess, msg, parts[i])
			continue
		}
		go g.sseServe(sess, msg)
	}
}

// sseServe answers one request of an HTTP+SSE session on its stream.
func (g *Gateway) sseServe(sess *session, msg *schema.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.CallTimeout)
	defer cancel()
	send := func(b []byte) {
		if b == nil {
			return
		}
		if err := g.nc.Publish(streams.SSESubject(sess.id), b); err != nil {
			g.log.Warn("passing a message to an HTTP+SSE stream", "session", sess.id, "err", err)
		}
	}
	switch {
	case msg.Method == schema.MethodInitialize:
		p, rpcErr := initializeParams(msg.Params)
		if rpcErr != nil {
			send(schema.AppendError(nil, msg.ID, rpcErr))
			return
		}
		rev := schema.Revision20241105
		if schema.IsSessionRevision(p.ProtocolVersion) {
			rev = p.ProtocolVersion
		}
		if rpcErr := g.sessions.update(ctx, sess, func(rec *sessionRecord) *schema.Error {
			rec.Revision, rec.ClientInfo, rec.Capabilities, rec.Transport = rev, p.ClientInfo, p.Capabilities, transportSSE
			return nil
		}); rpcErr != nil {
			send(schema.AppendError(nil, msg.ID, rpcErr))
			return
		}
		send(schema.AppendResult(nil, msg.ID, g.initializeResult(rev)))
	case routedToWorkers(msg.Method):
		note := func(rep *schema.Reply) { send(g.sseNote(sess, rep)) }
		result, rpcErr, _ := g.callTool(ctx, sess, msg, note)
		send(workerResponse(msg.ID, result, rpcErr))
	default:
		result, rpcErr := g.answer(ctx, sess, msg)
		if rpcErr != nil {
			send(schema.AppendError(nil, msg.ID, rpcErr))
			return
		}
		send(schema.AppendResult(nil, msg.ID, result))
	}
}

// sseNote formats a worker's notification or request for an HTTP+SSE
// stream (nil for none): log messages below the session's level are
// dropped, and a request the client cannot take is refused to the worker.
func (g *Gateway) sseNote(sess *session, rep *schema.Reply) []byte {
	expand := func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, rep.Result) }
	if rep.Kind == schema.ReplyRequest {
		if c := schema.ClientCapability(rep.Method); c != "" && !sess.clientCan(c) {
			g.refuseClientRequest(rep, schema.Errorf(schema.CodeMethodNotFound, "%s: the client did not declare the %s capability", rep.Method, c))
			return nil
		}
		return schema.AppendRequestFunc(nil, rep.ID, rep.Method, expand)
	}
	if rep.Method == "" || (rep.Method == schema.NotificationMessage && !sess.wantsLog(rep.Result)) {
		return nil
	}
	return schema.AppendNotificationFunc(nil, rep.Method, expand)
}

// transportSSE marks a session of the HTTP+SSE transport.
const transportSSE = "sse"

// legacySSE reports whether the session lives on the HTTP+SSE transport.
func (s *session) legacySSE() bool { return s.Transport == transportSSE }
