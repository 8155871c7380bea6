package gateway

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/mcpstream/mcpstream/schema"
)

// The stateless revision (2026-07-28): no initialize and no session. Every
// request carries its revision and the client's capabilities in _meta and
// mirrors its method and target into headers, which must match the body.
// Final results carry resultType, cacheable ones ttlMs and cacheScope.

// listTTLMs is the freshness hint of list and discover results: the
// registry changes rarely, and list_changed notifications tell of changes.
const listTTLMs = 60_000

// isModern reports whether a request should be served by the stateless
// revision: it names (in _meta, or in its header without a session) a
// revision that is not one of the session revisions, including unknown
// ones, which are then answered -32022.
func isModern(msg *schema.Message, meta schema.RequestMeta, r *http.Request) bool {
	later := func(v string) bool { return v != "" && !schema.IsSessionRevision(v) }
	if msg.Method == schema.MethodInitialize {
		// A legacy initialize names its revision in params, not _meta.
		return later(meta.ProtocolVersion)
	}
	return later(meta.ProtocolVersion) || (later(r.Header.Get(schema.HeaderProtocolVersion)) && r.Header.Get(schema.HeaderSessionID) == "")
}

// checkModern validates a stateless request's version, _meta and headers.
// It returns the HTTP status and error to refuse it with, or 0 and nil.
func checkModern(snap *Snapshot, msg *schema.Message, meta schema.RequestMeta, r *http.Request) (int, *schema.Error) {
	hdr := r.Header.Get(schema.HeaderProtocolVersion)
	switch {
	case hdr == "":
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: the MCP-Protocol-Version header is required")
	case meta.ProtocolVersion == "":
		return http.StatusBadRequest, schema.Errorf(schema.CodeInvalidParams, "params._meta must carry %s", schema.MetaProtocolVersion)
	case meta.ClientCapabilities == nil:
		return http.StatusBadRequest, schema.Errorf(schema.CodeInvalidParams, "params._meta must carry %s", schema.MetaClientCapabilities)
	case hdr != meta.ProtocolVersion:
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: MCP-Protocol-Version header %q does not match body value %q", hdr, meta.ProtocolVersion)
	case !schema.IsStateless(meta.ProtocolVersion):
		return http.StatusBadRequest, schema.UnsupportedVersionError(meta.ProtocolVersion)
	}
	if m := r.Header.Values(schema.HeaderMethod); len(m) != 1 || m[0] != msg.Method {
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: Mcp-Method header %q does not match body value %q", r.Header.Get(schema.HeaderMethod), msg.Method)
	}
	member := schema.NameMember(msg.Method)
	if member == "" {
		return 0, nil
	}
	var want string
	_ = schema.ScanObject(msg.Params, func(k, v []byte) {
		if string(k) == member {
			_ = json.Unmarshal(v, &want)
		}
	})
	vals := r.Header.Values(schema.HeaderName)
	if len(vals) != 1 {
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: one Mcp-Name header is required for %s", msg.Method)
	}
	got, ok := schema.DecodeHeaderValue(vals[0])
	if !ok {
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: the Mcp-Name header value is malformed")
	}
	if got != want {
		return http.StatusBadRequest, schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: Mcp-Name header value %q does not match body value %q", got, want)
	}
	if t := snap.Tool(want); msg.Method == schema.MethodToolsCall && t != nil && t.TaskSupport() == schema.TaskSupportRequired &&
		!schema.HasExtension(meta.ClientCapabilities, schema.ExtensionTasks) {
		return http.StatusBadRequest, missingTasksExtension("tool " + want)
	}
	if hp := snap.headers[want]; hp != nil && msg.Method == schema.MethodToolsCall {
		if rpcErr := checkParamHeaders(hp, lookup(msg.Params, []string{"arguments"}), r.Header); rpcErr != nil {
			return http.StatusBadRequest, rpcErr
		}
	}
	return 0, nil
}

// postModern serves one POST of the stateless revision.
func (g *Gateway) postModern(w http.ResponseWriter, r *http.Request, msg *schema.Message, meta schema.RequestMeta, jsonOK, sseOK bool) {
	if msg.Kind() != schema.KindRequest {
		if msg.Kind() == schema.KindResponse {
			writeError(w, http.StatusBadRequest, nil, schema.Errorf(schema.CodeInvalidRequest, "clients do not send responses in revision %s", schema.Revision20260728))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	snap := g.reg.Load()
	if status, rpcErr := checkModern(snap, msg, meta, r); rpcErr != nil {
		writeError(w, status, msg.ID, rpcErr)
		return
	}
	if g.refuseDraining(w, msg.ID) {
		return
	}
	sseOnly := sseOK && !jsonOK
	var result []byte
	var hints *schema.CacheHints
	public := &schema.CacheHints{TTLMs: listTTLMs, Scope: "public"}
	switch msg.Method {
	case schema.MethodServerDiscover:
		result, hints = g.discoverResult(), public
	case schema.MethodToolsList:
		result, hints = snap.ToolsListResult(), public
	case schema.MethodPromptsList:
		result, hints = snap.PromptsListResult(), public
	case schema.MethodResourcesList:
		result, hints = snap.ResourcesListResult(), public
	case schema.MethodResourcesTemplatesList:
		result, hints = snap.TemplatesListResult(), public
	case schema.MethodSubscriptionsListen:
		g.listen(w, msg, sseOK)
		return
	case schema.MethodTasksGet, schema.MethodTasksUpdate, schema.MethodTasksCancel:
		g.taskRequest(w, r, msg, meta, sseOnly)
		return
	default:
		if !routedToWorkers(msg.Method) {
			writeError(w, http.StatusNotFound, msg.ID, schema.Errorf(schema.CodeMethodNotFound,
				"Method not found: %s (not part of revision %s)", msg.Method, meta.ProtocolVersion))
			return
		}
		g.callModern(w, r, msg, meta, sseOK, sseOnly)
		return
	}
	respond(w, msg.ID, schema.AppendCompleteResult(nil, result, hints, g.serverInfo), nil, sseOnly)
}

// callModern routes a stateless request to the workers, as a session's
// would be, for a session that lives as long as the request.
func (g *Gateway) callModern(w http.ResponseWriter, r *http.Request, msg *schema.Message, meta schema.RequestMeta, sseOK, sseOnly bool) {
	sess := &session{sessionRecord: sessionRecord{Revision: meta.ProtocolVersion, Capabilities: meta.ClientCapabilities,
		Principal: g.principal(r)}}
	// Log messages only for a request that asked for them, at its level.
	sess.quiet = meta.LogLevel == ""
	sess.logLevel.Store(int32(max(0, slices.Index(logLevels, meta.LogLevel))))
	var hints *schema.CacheHints
	if msg.Method == schema.MethodResourcesRead {
		hints = &schema.CacheHints{TTLMs: 0, Scope: "private"}
	}
	if msg.Method != schema.MethodCompletionComplete {
		sess.inputResponses, sess.requestState = retryInputs(msg.Params)
	}
	sr := g.newStreamResponder(w, sess, sseOK)
	sr.decorate = func(dst, result []byte) []byte { return schema.AppendCompleteResult(dst, result, hints, g.serverInfo) }
	result, rpcErr, status := g.callTool(r.Context(), sess, msg, sr.note)
	if rpcErr != nil && rpcErr.Code == schema.CodeResourceNotFound {
		// 2026-07-28 answers an unknown resource with Invalid params.
		rpcErr = &schema.Error{Code: schema.CodeInvalidParams, Message: rpcErr.Message, Data: rpcErr.Data}
	}
	if rpcErr != nil && rpcErr.Code == schema.CodeMissingClientCapability && !sr.started {
		writeError(w, http.StatusBadRequest, msg.ID, rpcErr)
		return
	}
	if status != 0 && !sr.started {
		w.Header().Set("Retry-After", "1")
		writeError(w, status, msg.ID, rpcErr)
		return
	}
	sr.finish(msg.ID, result, rpcErr, sseOnly)
}

// discoverResult is the result of server/discover, before the fields
// every final result gets.
func (g *Gateway) discoverResult() []byte {
	b, _ := json.Marshal(struct {
		SupportedVersions []string       `json:"supportedVersions"`
		Capabilities      map[string]any `json:"capabilities"`
		Instructions      string         `json:"instructions,omitempty"`
	}{schema.SupportedVersions(), modernCapabilities(), g.cfg.Instructions})
	return b
}

// modernCapabilities are the server capabilities of the stateless revision.
func modernCapabilities() map[string]any {
	return map[string]any{"tools": map[string]any{"listChanged": true}, "prompts": map[string]any{"listChanged": true},
		"resources": map[string]any{"listChanged": true, "subscribe": true}, "logging": map[string]any{}, "completions": map[string]any{},
		"extensions": map[string]any{schema.ExtensionTasks: map[string]any{}}}
}

// retryInputs reads the inputResponses and requestState of a request
// retried after an input_required answer ("null" inputResponses count as
// none).
func retryInputs(params []byte) (responses []byte, state string) {
	_ = schema.ScanObject(params, func(k, v []byte) {
		switch string(k) {
		case "inputResponses":
			if string(v) != "null" {
				responses = v
			}
		case "requestState":
			_ = json.Unmarshal(v, &state)
		}
	})
	return responses, state
}
