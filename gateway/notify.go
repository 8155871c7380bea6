package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// logLevels are MCP's log levels, in order of severity.
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// streamResponder answers one request, switching the response to an SSE
// stream when the first notification about the request arrives (if the
// client accepts event streams; otherwise notifications are dropped). The
// final answer is then the stream's last event.
type streamResponder struct {
	g       *Gateway
	w       http.ResponseWriter
	rc      *http.ResponseController
	sess    *session
	sseOK   bool
	started bool
	buf     []byte
	// decorate, if set, rewrites a final result (JSON) as the session's
	// revision requires.
	decorate func(dst, result []byte) []byte
}

func (g *Gateway) newStreamResponder(w http.ResponseWriter, sess *session, sseOK bool) *streamResponder {
	return &streamResponder{g: g, w: w, rc: http.NewResponseController(w), sess: sess, sseOK: sseOK}
}

// note relays a worker's notification or request to the client. A request
// the client cannot take (no event stream, or a capability it did not
// declare) is answered to the worker with an error instead.
func (s *streamResponder) note(rep *schema.Reply) {
	if rep.Kind == schema.ReplyRequest {
		s.request(rep)
		return
	}
	if !s.sseOK || rep.Method == "" {
		return
	}
	if rep.Method == schema.NotificationMessage && !s.sess.wantsLog(rep.Result) {
		return
	}
	s.send(schema.AppendNotificationFunc(append(s.buf[:0], "event: message\ndata: "...), rep.Method,
		func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, rep.Result) }))
}

func (s *streamResponder) request(rep *schema.Reply) {
	switch capability := schema.ClientCapability(rep.Method); {
	case schema.IsStateless(s.sess.Revision):
		s.g.refuseClientRequest(rep, schema.Errorf(schema.CodeMethodNotFound,
			"%s: revision %s sends no requests to the client", rep.Method, s.sess.Revision))
		return
	case !s.sseOK:
		s.g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError,
			"%s: the client accepts no event stream, so no request can reach it", rep.Method))
		return
	case capability != "" && !s.sess.clientCan(capability):
		s.g.refuseClientRequest(rep, schema.Errorf(schema.CodeMethodNotFound,
			"%s: the client did not declare the %s capability", rep.Method, capability))
		return
	}
	b := schema.AppendRequestFunc(append(s.buf[:0], "event: message\ndata: "...), rep.ID, rep.Method,
		func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, rep.Result) })
	if b == nil {
		s.g.refuseClientRequest(rep, schema.Errorf(schema.CodeInvalidParams, "%s: malformed params from the worker", rep.Method))
		return
	}
	if !s.send(b) {
		s.g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError, "%s: the client's connection failed", rep.Method))
	}
}

// send writes one event (b, without its final blank line; nil for none),
// starting the stream on the first, and reports whether it was written.
func (s *streamResponder) send(b []byte) bool {
	if b == nil {
		return false
	}
	s.buf = append(b, "\n\n"...)
	if !s.started {
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write(s.buf); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// finish writes the answer: the last event of a started stream, or a plain
// response as the client's Accept allows.
func (s *streamResponder) finish(id schema.ID, result []byte, rpcErr *schema.Error, sseOnly bool) {
	expand := func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, result) }
	if s.decorate != nil && rpcErr == nil {
		js, err := schema.MsgpackToJSON(nil, result)
		if err == nil {
			js = s.decorate(nil, js)
		}
		if js == nil || err != nil {
			rpcErr = schema.Errorf(schema.CodeInternalError, "malformed result from worker")
		}
		expand = func(dst []byte) ([]byte, error) { return append(dst, js...), nil }
	}
	if !s.started {
		respondWith(s.w, id, rpcErr, sseOnly, expand)
		return
	}
	b := append(s.buf[:0], "event: message\ndata: "...)
	if rpcErr != nil {
		b = schema.AppendError(b, id, rpcErr)
		noteRPCError(s.w)
	} else if b = schema.AppendResultFunc(b, id, expand); b == nil {
		b = schema.AppendError(append(s.buf[:0], "event: message\ndata: "...), id, schema.Errorf(schema.CodeInternalError, "malformed result from worker"))
		noteRPCError(s.w)
	}
	b = append(b, "\n\n"...)
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write(b); err == nil {
		_ = s.rc.Flush()
	}
}

// wantsLog reports whether a notifications/message with these params
// (msgpack) is at or above the session's level.
func (s *session) wantsLog(params []byte) bool {
	if s.quiet {
		return false
	}
	min := s.logLevel.Load()
	if min == 0 {
		return true
	}
	js, err := schema.MsgpackToJSON(nil, params)
	if err != nil {
		return false
	}
	var p struct {
		Level string `json:"level"`
	}
	if json.Unmarshal(js, &p) != nil {
		return false
	}
	return int32(slices.Index(logLevels, p.Level)) >= min
}

// setLogLevel answers logging/setLevel: the session's level is kept here
// and in the session bucket, so every gateway applies it.
func (g *Gateway) setLogLevel(ctx context.Context, sess *session, params []byte) *schema.Error {
	var p struct {
		Level string `json:"level"`
	}
	if len(params) == 0 || json.Unmarshal(params, &p) != nil {
		return schema.Errorf(schema.CodeInvalidParams, "logging/setLevel needs params with a level")
	}
	if !slices.Contains(logLevels, p.Level) {
		return schema.Errorf(schema.CodeInvalidParams, "unknown log level %q (want one of %v)", p.Level, logLevels)
	}
	return g.sessions.update(ctx, sess, func(rec *sessionRecord) *schema.Error {
		rec.LogLevel = p.Level
		return nil
	})
}

// cancelRequest passes a client's notifications/cancelled to every worker:
// the one running the request cancels its handler's context. Any gateway
// can do it, since the request is named by session and JSON-RPC id.
func (g *Gateway) cancelRequest(sess *session, params []byte) {
	var id, reason []byte
	if len(params) == 0 || schema.ScanObject(params, func(k, v []byte) {
		switch string(k) {
		case "requestId":
			id = v
		case "reason":
			reason = v
		}
	}) != nil || !schema.ID(id).Valid() {
		return // a malformed cancellation is ignored, as the spec allows
	}
	c := schema.Cancel{Session: sess.id, RequestID: string(id)}
	_ = json.Unmarshal(reason, &c.Reason)
	g.publishCancel(c)
}

// publishCancel tells every worker to cancel the request c names.
func (g *Gateway) publishCancel(c schema.Cancel) {
	b, err := c.Marshal()
	if err == nil {
		err = g.nc.Publish(streams.CancelSubject, b)
	}
	if err != nil {
		g.log.Warn("passing on a cancellation", "err", err)
	}
}
