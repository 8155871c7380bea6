package gateway

import (
	"net/http"
	"sync"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// replier carries the answers to one message back over the transport it
// came on: an HTTP response of its own (httpReplier), a slot in a batch's
// response (batchReplier), or the session's stream of the HTTP+SSE
// transport (sseReplier). It is the seam between dispatch and the
// transports.
type replier interface {
	// result answers the request with a result.
	result(body resultBody)
	// fail answers the request with a JSON-RPC error. status is the HTTP
	// status to answer with while the transport still can (0 for 200);
	// 503 goes with Retry-After.
	fail(status int, e *schema.Error)
	// note relays a worker's notification or request about the call the
	// request is waiting for; a request that cannot reach the client is
	// refused back to the worker.
	note(rep *schema.Reply)
	// accepted acknowledges a notification or a response (HTTP 202).
	accepted()
}

// resultBody is a request's result: JSON the gateway made, or msgpack a
// worker sent. It is passed by value, so answering costs no allocation.
type resultBody struct {
	b []byte
	// msgpack is set when b is a worker's msgpack, to expand.
	msgpack bool
}

// jsonResult is a result body the gateway made.
func jsonResult(b []byte) resultBody { return resultBody{b: b} }

// workerResult is a result body a worker sent.
func workerResult(mp []byte) resultBody { return resultBody{b: mp, msgpack: true} }

// appendTo appends the result as JSON to dst; it fails on a malformed
// result from a worker.
func (r resultBody) appendTo(dst []byte) ([]byte, error) {
	if r.msgpack {
		return schema.MsgpackToJSON(dst, r.b)
	}
	return append(dst, r.b...), nil
}

// errMalformedResult answers a request whose worker's result does not
// expand to JSON.
var errMalformedResult = schema.Errorf(schema.CodeInternalError, "malformed result from worker")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// sseEvent starts an SSE message event.
const sseEvent = "event: message\ndata: "

// httpReplier answers a message posted alone over Streamable HTTP: HTTP 200
// with one JSON object, or, for a client that accepts only event streams,
// one SSE event. The first notification a worker sends about the call
// turns the response into an SSE stream (if the client accepts event
// streams; otherwise notifications are dropped), and the answer is then
// the stream's last event. In the stateless revision every final result
// gets resultType, cache hints and serverInfo.
type httpReplier struct {
	g     *Gateway
	w     http.ResponseWriter
	id    schema.ID
	sess  *session
	sseOK bool
	// sseOnly is set when the client accepts event streams but not JSON.
	sseOnly bool
	// stateless is set for a request of the stateless revision; hints are
	// the cache hints of its result.
	stateless bool
	hints     *schema.CacheHints
	// started is set once the response is an SSE stream.
	started bool
	buf     []byte
}

func (h *httpReplier) result(body resultBody) {
	if h.stateless {
		js, err := body.appendTo(nil)
		if err == nil {
			js = schema.AppendCompleteResult(nil, js, h.hints, h.g.serverInfo)
		}
		if err != nil || js == nil {
			h.fail(0, errMalformedResult)
			return
		}
		body = jsonResult(js)
	}
	if h.started {
		b := schema.AppendResultFunc(append(h.buf[:0], sseEvent...), h.id, body.appendTo)
		if b == nil {
			h.fail(0, errMalformedResult)
			return
		}
		h.lastEvent(b)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if h.sseOnly {
		b = append(b, sseEvent...)
	}
	start := len(b)
	if b = schema.AppendResultFunc(b, h.id, body.appendTo); b == nil {
		b = schema.AppendError((*bp)[:start], h.id, errMalformedResult)
		noteRPCError(h.w)
	}
	h.write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
}

func (h *httpReplier) fail(status int, e *schema.Error) {
	if h.stateless {
		status, e = statelessError(status, e)
	}
	noteRPCError(h.w)
	switch {
	case h.started:
		h.lastEvent(schema.AppendError(append(h.buf[:0], sseEvent...), h.id, e))
	case status != 0:
		writeError(h.w, status, h.id, e)
	case h.sseOnly:
		h.write(schema.AppendError([]byte(sseEvent), h.id, e))
	default:
		h.write(schema.AppendError(make([]byte, 0, 128), h.id, e))
	}
}

// write answers with b, one JSON object or (sseOnly) one SSE event
// without its final blank line. An answer larger than net/http holds
// until the handler returns goes to the connection now, under a deadline
// for its size; a smaller one is flushed under front's.
func (h *httpReplier) write(b []byte) {
	hdr := h.w.Header()
	if h.sseOnly {
		b = append(b, "\n\n"...)
		setSSEHeaders(hdr)
	} else {
		setJSONContentType(hdr)
	}
	if len(b) > heldAnswer {
		h.g.armWrite(h.w, len(b))
	}
	h.w.WriteHeader(http.StatusOK)
	_, _ = h.w.Write(b)
}

// lastEvent writes the final event b (without its blank line) of a
// started stream.
func (h *httpReplier) lastEvent(b []byte) {
	b = append(b, "\n\n"...)
	rc := http.NewResponseController(h.w)
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := h.w.Write(b); err == nil {
		_ = rc.Flush()
	}
}

func (h *httpReplier) note(rep *schema.Reply) {
	b := h.g.clientMessage(h.sess, rep, h.sseOK)
	if b == nil {
		return
	}
	if !h.send(append(append(h.buf[:0], sseEvent...), b...)) && rep.Kind == schema.ReplyRequest {
		h.g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError, "%s: the client's connection failed", rep.Method))
	}
}

// send writes one event (b, without its final blank line), starting the
// stream on the first, and reports whether it was written.
func (h *httpReplier) send(b []byte) bool {
	h.buf = append(b, "\n\n"...)
	if !h.started {
		setSSEHeaders(h.w.Header())
		h.w.WriteHeader(http.StatusOK)
		h.started = true
	}
	rc := http.NewResponseController(h.w)
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := h.w.Write(h.buf); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func (h *httpReplier) accepted() { h.w.WriteHeader(http.StatusAccepted) }

// setSSEHeaders sets the headers of a response that is an SSE stream: not
// to be cached, nor buffered by a proxy (X-Accel-Buffering, which nginx
// honours and the 2026-07-28 transport asks for).
func setSSEHeaders(h http.Header) {
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = noBuffering
}

// The values of the headers every answer sets, each one slice shared by
// all responses instead of one made a response (as Header.Set would).
// They are never modified: net/http only reads a handler's header values
// (it writes the response from a clone of the header), and a value added
// to one with Header.Add goes to a new slice, since each has no room
// beyond its one element.
var (
	jsonContentType = []string{"application/json"}
	sseContentType  = []string{"text/event-stream"}
	noCache         = []string{"no-cache"}
	noBuffering     = []string{"no"}
)

// setJSONContentType sets h's Content-Type to application/json.
func setJSONContentType(h http.Header) { h["Content-Type"] = jsonContentType }

// clientMessage formats a worker's notification or request about a call
// of sess for its client, or returns nil when nothing is to be sent: log
// messages below the session's level are dropped, and so is every
// notification when the client cannot take an event stream (canStream
// false); a request the client cannot take (the stateless revision sends
// none, no event stream, a capability it did not declare) is refused back
// to the worker, which is then answered at once instead of waiting out
// its deadline.
func (g *Gateway) clientMessage(sess *session, rep *schema.Reply, canStream bool) []byte {
	expand := func(dst []byte) ([]byte, error) { return schema.MsgpackToJSON(dst, rep.Result) }
	if rep.Kind != schema.ReplyRequest {
		if !canStream || rep.Method == "" || (rep.Method == schema.NotificationMessage && !sess.wantsLog(rep.Result)) {
			return nil
		}
		return schema.AppendNotificationFunc(nil, rep.Method, expand)
	}
	var refusal *schema.Error
	switch capability := schema.ClientCapability(rep.Method); {
	case schema.IsStateless(sess.revision()):
		refusal = schema.Errorf(schema.CodeMethodNotFound, "%s: revision %s sends no requests to the client", rep.Method, sess.revision())
	case !canStream:
		refusal = schema.Errorf(schema.CodeInternalError, "%s: the client accepts no event stream, so no request can reach it", rep.Method)
	case capability != "" && !sess.clientCan(capability):
		refusal = schema.Errorf(schema.CodeMethodNotFound, "%s: the client did not declare the %s capability", rep.Method, capability)
	default:
		if b := schema.AppendRequestFunc(nil, rep.ID, rep.Method, expand); b != nil {
			return b
		}
		refusal = schema.Errorf(schema.CodeInvalidParams, "%s: malformed params from the worker", rep.Method)
	}
	g.refuseClientRequest(rep, refusal)
	return nil
}

// writeError answers with an HTTP error status and a JSON-RPC error body
// (id null when the request's id is unknown).
func writeError(w http.ResponseWriter, status int, id schema.ID, e *schema.Error) {
	writeErrorBody(w, status, schema.AppendError(make([]byte, 0, 128), id, e))
}

// writeErrorBody answers with status and b, an encoded JSON-RPC error. It
// is where every 503 gets its Retry-After: an overload, a draining
// gateway, or a store it cannot reach now, each worth trying again in a
// second, on this gateway or another; and a 429 (a principal's rate
// limit) one, unless the refusal set it.
func writeErrorBody(w http.ResponseWriter, status int, b []byte) {
	noteRPCError(w)
	h := w.Header()
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "1")
	}
	setJSONContentType(h)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
