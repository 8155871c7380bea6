package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// exchange is one JSON-RPC message on its way through the gateway: what a
// transport parsed, the session it belongs to, and how its answer goes
// back. Every transport builds one and hands it to dispatch.
type exchange struct {
	msg *schema.Message
	// raw is the message as posted: a client's response is relayed as is.
	raw []byte
	// sess is the message's session: for a stateless request, one that
	// lives as long as the request; nil for an initialize over Streamable
	// HTTP, which creates it.
	sess *session
	// stateless is set for a message of the stateless revision.
	stateless bool
	// r is the HTTP request that carried the message: its headers, its
	// principal and its context.
	r *http.Request
	// w is r's response writer when the message is r's only one (nil in a
	// batch, and on the HTTP+SSE transport, whose answers travel on the
	// session's stream): a subscriptions/listen stream takes it over.
	w http.ResponseWriter
	// out carries the answers back.
	out replier
	// admitted is set for a request of a POST the gateway took before it
	// began to drain (a batch, an HTTP+SSE POST answered 202): it is
	// served, not refused, while the gateway drains.
	admitted bool
}

// dispatch serves one message from any transport: a notification or a
// response is handled and acknowledged; a request is refused while the
// gateway drains (unless its POST was admitted before), and otherwise initializes a session, goes to the worker
// group that serves it (forward), or is answered here from the registry
// snapshot, the session or the task bucket (answer).
func (g *Gateway) dispatch(ctx context.Context, x *exchange) {
	if g.obs != nil && x.msg.Method != "" { // a request or a notification
		var op *operation
		ctx, op = g.obs.begin(ctx, x)
		defer op.end(ctx)
	}
	if x.msg.Kind() != schema.KindRequest {
		g.notified(ctx, x)
		return
	}
	g.calls.add() // before the check: Shutdown waits for it, or it is refused
	defer g.calls.done()
	if g.draining() && !x.admitted {
		x.out.fail(http.StatusServiceUnavailable, g.overloaded(refusedDraining))
		return
	}
	if !g.withinRate(ctx, x) {
		return
	}
	switch method := x.msg.Method; {
	case method == schema.MethodInitialize && !x.stateless:
		g.initialize(ctx, x)
	case routedToWorkers(method):
		g.forward(ctx, x)
	default:
		g.answer(ctx, x)
	}
}

// routedToWorkers reports whether a method is answered by a worker group.
func routedToWorkers(method string) bool {
	switch method {
	case schema.MethodToolsCall, schema.MethodPromptsGet, schema.MethodResourcesRead, schema.MethodCompletionComplete:
		return true
	}
	return false
}

// notified handles a notification or a response from the client:
// notifications/cancelled is passed to the workers (every one of them,
// so it counts against its principal's rate as a request does), and a
// response to a worker's request to the worker waiting for it; the others
// change nothing. The stateless revision has neither: a response is refused,
// and notifications are acknowledged (a stateless request is cancelled by
// closing its stream).
func (g *Gateway) notified(ctx context.Context, x *exchange) {
	msg := x.msg
	switch {
	case x.stateless && msg.Kind() == schema.KindResponse:
		x.out.fail(http.StatusBadRequest, schema.Errorf(schema.CodeInvalidRequest,
			"clients do not send responses in revision %s", schema.Revision20260728))
		return
	case x.stateless:
	case msg.Kind() == schema.KindResponse:
		g.relayAnswer(x.sess, msg, x.raw)
	case msg.Method == schema.NotificationCancelled:
		if !g.withinRate(ctx, x) {
			return
		}
		g.cancelRequest(x.sess, msg.Params)
	}
	x.out.accepted()
}

// initialize answers an initialize: over Streamable HTTP it creates the
// session (its id goes back in Mcp-Session-Id); on the HTTP+SSE
// transport, where opening the stream created it, it records the
// revision and the client.
func (g *Gateway) initialize(ctx context.Context, x *exchange) {
	var p schema.InitializeParams
	if len(x.msg.Params) == 0 || json.Unmarshal(x.msg.Params, &p) != nil || p.ProtocolVersion == "" {
		x.out.fail(0, schema.Errorf(schema.CodeInvalidParams, "initialize needs params with protocolVersion"))
		return
	}
	rev := schema.Negotiate(p.ProtocolVersion)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if x.sess == nil {
		sess, err := g.sessions.create(ctx, sessionRecord{
			Revision: rev, Principal: g.principal(x.r), ClientInfo: p.ClientInfo, Capabilities: p.Capabilities,
			CreatedAt: time.Now().UTC(), Gateway: g.cfg.ID,
		})
		if err != nil {
			g.log.ErrorContext(ctx, "creating session", "err", err)
			x.out.fail(http.StatusServiceUnavailable, errSessionStore)
			return
		}
		x.w.Header().Set(schema.HeaderSessionID, sess.id)
		x.sess = sess
	} else {
		if !schema.IsSessionRevision(p.ProtocolVersion) {
			rev = schema.Revision20241105 // the HTTP+SSE transport's own
		}
		if rpcErr := g.sessions.update(ctx, x.sess, func(rec *sessionRecord) *schema.Error {
			rec.Revision, rec.ClientInfo, rec.Capabilities = rev, p.ClientInfo, p.Capabilities
			return nil
		}); rpcErr != nil {
			x.out.fail(0, rpcErr)
			return
		}
	}
	x.out.result(jsonResult(g.initializeResult(rev)))
}

// errSessionStore answers a request when the session bucket cannot be
// reached (HTTP 503, with Retry-After).
var errSessionStore = schema.Errorf(schema.CodeInternalError, "session store unavailable")

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

// answer serves the requests the gateway answers itself: the lists, from
// the registry snapshot; ping, logging/setLevel and resource
// subscriptions in the session revisions; server/discover,
// subscriptions/listen and the tasks extension in the stateless one.
func (g *Gateway) answer(ctx context.Context, x *exchange) {
	snap := g.reg.Load()
	var result []byte
	switch method := x.msg.Method; {
	case method == schema.MethodToolsList:
		result = snap.ToolsListResult()
	case method == schema.MethodPromptsList:
		result = snap.PromptsListResult()
	case method == schema.MethodResourcesList:
		result = snap.ResourcesListResult()
	case method == schema.MethodResourcesTemplatesList:
		result = snap.TemplatesListResult()
	case x.stateless:
		switch method {
		case schema.MethodServerDiscover:
			result = g.discoverResult()
		case schema.MethodSubscriptionsListen:
			g.listen(x)
			return
		case schema.MethodTasksGet, schema.MethodTasksUpdate, schema.MethodTasksCancel:
			g.taskRequest(ctx, x)
			return
		default:
			x.out.fail(http.StatusNotFound, schema.Errorf(schema.CodeMethodNotFound,
				"Method not found: %s (not part of revision %s)", method, x.sess.revision()))
			return
		}
	case method == schema.MethodPing:
		result = []byte("{}")
	case method == schema.MethodLoggingSetLevel:
		if rpcErr := g.setLogLevel(ctx, x.sess, x.msg.Params); rpcErr != nil {
			x.out.fail(0, rpcErr)
			return
		}
		result = []byte("{}")
	case method == schema.MethodResourcesSubscribe, method == schema.MethodResourcesUnsubscribe:
		if rpcErr := g.subscribe(ctx, x.sess, x.msg.Params, method == schema.MethodResourcesSubscribe); rpcErr != nil {
			x.out.fail(0, rpcErr)
			return
		}
		result = []byte("{}")
	default:
		x.out.fail(0, schema.Errorf(schema.CodeMethodNotFound, "Method not found: %s", method))
		return
	}
	x.out.result(jsonResult(result))
}
