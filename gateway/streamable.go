package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// ServeHTTP serves the MCP endpoint: POST carries one JSON-RPC message, GET
// opens the session's event stream, DELETE ends the session. Browser
// pages on allowed origins get CORS (preflights answered, the session id
// exposed). Every other request is authenticated first (Config.Auth), and
// every request is counted in the metrics (Config.Metrics).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.metrics == nil {
		g.withCORS(w, r, g.serveHTTP)
		return
	}
	g.metrics.serve(w, r, func(w http.ResponseWriter, r *http.Request) { g.withCORS(w, r, g.serveHTTP) })
}

// serveHTTP is ServeHTTP before the metrics.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	r, ok := g.admit(w, r)
	if !ok {
		return
	}
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

// originAllowed guards against DNS rebinding: no Origin (non-browser
// clients), a loopback Origin, or one configured.
func (g *Gateway) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// accepts reports which response types the Accept header allows. A missing
// Accept allows both.
func accepts(r *http.Request) (jsonOK, sseOK bool) {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return true, true
	}
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			switch mediaType(strings.TrimSpace(part)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				sseOK = true
			case "*/*":
				jsonOK, sseOK = true, true
			}
		}
	}
	return jsonOK, sseOK
}

// mediaType returns the media type of a Content-Type or Accept value,
// lower-cased and without parameters, or "" when it is malformed. The
// common exact values skip the parser, which allocates.
func mediaType(v string) string {
	switch v {
	case "application/json", "text/event-stream":
		return v
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

func (g *Gateway) post(w http.ResponseWriter, r *http.Request) {
	if g.admission.Full() && r.Header.Get(schema.HeaderSessionID) != "" {
		// Overloaded: refuse before reading or parsing anything, so that a
		// refusal costs next to nothing. (initialize, which carries no
		// session id, is still served: it never waits on a worker.) The
		// metrics take the method from Mcp-Method, when the client sent it.
		g.metrics.refused(refusedGatewayLimit)
		noteMethod(w, methodOf(r.Header.Get(schema.HeaderMethod)))
		w.Header().Set("Retry-After", "1")
		writeErrorBody(w, http.StatusServiceUnavailable, g.doorRefusal)
		return
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, nil, schema.Errorf(schema.CodeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	jsonOK, sseOK := accepts(r)
	if !jsonOK && !sseOK {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow application/json or text/event-stream"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(serverWriter(w), r.Body, g.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, nil, schema.Errorf(schema.CodeInvalidRequest, "request body exceeds %d bytes", g.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeParseError, "reading body: %v", err))
		return
	}
	if err := schema.CheckDepth(body, g.cfg.MaxDepth); err != nil {
		writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest, "JSON nested deeper than %d", g.cfg.MaxDepth))
		return
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' && json.Valid(body) {
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
	if meta, ok := schema.ParseRequestMeta(msg.Params); ok && isModern(msg, meta, r) {
		g.postModern(w, r, msg, meta, jsonOK, sseOK)
		return
	}
	if v := r.Header.Get(schema.HeaderProtocolVersion); v != "" && !schema.IsSessionRevision(v) {
		writeError(w, http.StatusBadRequest, msg.ID, schema.Errorf(schema.CodeInvalidRequest,
			"Unsupported protocol version: %s (supported: %s)", v, strings.Join(schema.SessionRevisions, ", ")))
		return
	}
	if msg.Kind() == schema.KindRequest && msg.Method == schema.MethodInitialize {
		g.initialize(w, r, msg, sseOK && !jsonOK)
		return
	}
	sess, ok := g.requireSession(w, r, msg.ID)
	if !ok {
		return
	}
	if msg.Kind() != schema.KindRequest {
		g.notified(sess, msg, body)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if g.refuseDraining(w, msg.ID) {
		return
	}
	if routedToWorkers(msg.Method) {
		sr := g.newStreamResponder(w, sess, sseOK)
		result, rpcErr, status := g.callTool(r.Context(), sess, msg, sr.note)
		if status != 0 && !sr.started {
			w.Header().Set("Retry-After", "1")
			writeError(w, status, msg.ID, rpcErr)
			return
		}
		sr.finish(msg.ID, result, rpcErr, sseOK && !jsonOK)
		return
	}
	result, rpcErr := g.answer(r.Context(), sess, msg)
	respond(w, msg.ID, result, rpcErr, sseOK && !jsonOK)
}

// routedToWorkers reports whether a method is answered by a worker group.
func routedToWorkers(method string) bool {
	switch method {
	case schema.MethodToolsCall, schema.MethodPromptsGet, schema.MethodResourcesRead, schema.MethodCompletionComplete:
		return true
	}
	return false
}

// notified handles a notification or a response from the client (raw is
// the message as posted): notifications/cancelled is passed to the
// workers, and a response to a worker's request to the worker waiting for
// it; the others change nothing.
func (g *Gateway) notified(sess *session, msg *schema.Message, raw []byte) {
	switch {
	case msg.Kind() == schema.KindResponse:
		g.relayAnswer(sess, msg, raw)
	case msg.Method == schema.NotificationCancelled:
		g.cancelRequest(sess, msg.Params)
	}
}

// answer handles the requests the gateway answers itself: everything but
// initialize and tools/call. It returns the JSON result or an error.
func (g *Gateway) answer(ctx context.Context, sess *session, msg *schema.Message) ([]byte, *schema.Error) {
	switch msg.Method {
	case schema.MethodPing:
		return []byte("{}"), nil
	case schema.MethodToolsList:
		return g.reg.Load().ToolsListResult(), nil
	case schema.MethodPromptsList:
		return g.reg.Load().PromptsListResult(), nil
	case schema.MethodResourcesList:
		return g.reg.Load().ResourcesListResult(), nil
	case schema.MethodResourcesTemplatesList:
		return g.reg.Load().TemplatesListResult(), nil
	case schema.MethodLoggingSetLevel:
		if err := g.setLogLevel(ctx, sess, msg.Params); err != nil {
			return nil, err
		}
		return []byte("{}"), nil
	case schema.MethodResourcesSubscribe, schema.MethodResourcesUnsubscribe:
		if err := g.subscribe(ctx, sess, msg.Params, msg.Method == schema.MethodResourcesSubscribe); err != nil {
			return nil, err
		}
		return []byte("{}"), nil
	default:
		return nil, schema.Errorf(schema.CodeMethodNotFound, "Method not found: %s", msg.Method)
	}
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
		g.log.Error("loading session", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, id, schema.Errorf(schema.CodeInternalError, "session store unavailable"))
		return nil, false
	}
	if g.otherPrincipal(r, sess.Principal) || sess.legacySSE() {
		// Another principal's session, or one of the HTTP+SSE transport:
		// as good as unknown here.
		writeError(w, http.StatusNotFound, id, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
		return nil, false
	}
	return sess, true
}

func (g *Gateway) initialize(w http.ResponseWriter, r *http.Request, msg *schema.Message, sse bool) {
	p, rpcErr := initializeParams(msg.Params)
	if rpcErr != nil {
		respond(w, msg.ID, nil, rpcErr, sse)
		return
	}
	rev := schema.Negotiate(p.ProtocolVersion)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	sess, err := g.sessions.create(ctx, sessionRecord{
		Revision: rev, Principal: g.principal(r), ClientInfo: p.ClientInfo, Capabilities: p.Capabilities,
		CreatedAt: time.Now().UTC(), Gateway: g.cfg.ID,
	})
	if err != nil {
		g.log.Error("creating session", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, msg.ID, schema.Errorf(schema.CodeInternalError, "session store unavailable"))
		return
	}
	w.Header().Set(schema.HeaderSessionID, sess.id)
	respond(w, msg.ID, g.initializeResult(rev), nil, sse)
}

// initializeResult is the result of an initialize that negotiated rev.
func (g *Gateway) initializeResult(rev string) []byte {
	res, _ := json.Marshal(schema.InitializeResult{
		ProtocolVersion: rev,
		Capabilities: map[string]any{"tools": map[string]any{"listChanged": true}, "prompts": map[string]any{"listChanged": true},
			"resources": map[string]any{"subscribe": true, "listChanged": true}, "logging": map[string]any{}, "completions": map[string]any{}},
		ServerInfo:   g.cfg.ServerInfo,
		Instructions: g.cfg.Instructions,
	})
	return res
}

// get opens the session's event stream (one per session: a second gets
// 409). Only keep-alive comments travel on it so far; it ends when the
// client goes, the session is deleted or the gateway drains.
func (g *Gateway) get(w http.ResponseWriter, r *http.Request) {
	if _, sseOK := accepts(r); !sseOK || len(r.Header.Values("Accept")) == 0 {
		writeError(w, http.StatusNotAcceptable, nil, schema.Errorf(schema.CodeInvalidRequest, "Accept must allow text/event-stream"))
		return
	}
	sess, ok := g.requireSession(w, r, nil)
	if !ok {
		return
	}
	if !sess.streaming.CompareAndSwap(false, true) {
		writeError(w, http.StatusConflict, nil, schema.Errorf(schema.CodeInvalidRequest, "an event stream is already open for this session"))
		return
	}
	first, last := sseHead, uint64(0)
	if after, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		// Resuming: what the client missed comes first, from the events
		// stream; a catch-up after the stream is published closes the gap.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		missed, upto, err := g.replay(ctx, sess, after)
		cancel()
		if err != nil {
			g.log.Warn("replaying events", "session", sess.id, "err", err)
		}
		first, last = append([]byte{}, sseHead...), upto
		for _, ev := range missed {
			first = append(first, ev.b...)
		}
	}
	if !g.hijackStream(w, sess, first, last) {
		g.streamThroughHTTP(w, r, sess)
		return
	}
	if last > 0 {
		g.catchUp(sess, last)
	}
}

func (g *Gateway) delete(w http.ResponseWriter, r *http.Request) {
	sess, ok := g.requireSession(w, r, nil) // only its own principal may end it
	if !ok {
		return
	}
	err := g.sessions.remove(r.Context(), sess.id)
	switch {
	case errors.Is(err, errNoSession):
		writeError(w, http.StatusNotFound, nil, schema.Errorf(schema.CodeInvalidRequest, "session not found"))
	case err != nil:
		g.log.Error("deleting session", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, nil, schema.Errorf(schema.CodeInternalError, "session store unavailable"))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
