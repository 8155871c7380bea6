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
// Final results carry resultType, cacheable ones ttlMs and cacheScope
// (httpReplier adds them); errors follow statelessError.

// listTTLMs is the freshness hint of list and discover results: the
// registry changes rarely, and list_changed notifications tell of changes.
const listTTLMs = 60_000

// isStateless reports whether a request should be served by the stateless
// revision: it names (in _meta, or in its header without a session) a
// revision that is not one of the session revisions, including unknown
// ones, which are then answered -32022.
func isStateless(msg *schema.Message, meta schema.RequestMeta, r *http.Request) bool {
	later := func(v string) bool { return v != "" && !schema.IsSessionRevision(v) }
	if msg.Method == schema.MethodInitialize {
		// A session revision's initialize names its revision in params,
		// not _meta.
		return later(meta.ProtocolVersion)
	}
	return later(meta.ProtocolVersion) || (later(r.Header.Get(schema.HeaderProtocolVersion)) && r.Header.Get(schema.HeaderSessionID) == "")
}

// checkHeaders validates the headers every stateless message carries,
// against the revision its _meta names (metaRev, which a notification may
// leave empty): MCP-Protocol-Version, required, matching metaRev and
// naming a stateless revision, and Mcp-Method, matching its method. It
// returns the error to refuse it with (HTTP 400): -32020, or -32022 with
// the supported revisions for a header naming another revision; or nil.
func checkHeaders(msg *schema.Message, metaRev string, r *http.Request) *schema.Error {
	switch hdr := r.Header.Get(schema.HeaderProtocolVersion); {
	case hdr == "":
		return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: the MCP-Protocol-Version header is required")
	case metaRev != "" && hdr != metaRev:
		return schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: MCP-Protocol-Version header %q does not match body value %q", hdr, metaRev)
	case !schema.IsStateless(hdr):
		return schema.UnsupportedVersionError(hdr)
	}
	if m := r.Header.Values(schema.HeaderMethod); len(m) != 1 || m[0] != msg.Method {
		return schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: Mcp-Method header %q does not match body value %q", r.Header.Get(schema.HeaderMethod), msg.Method)
	}
	return nil
}

// checkStateless validates a stateless request's version, _meta and
// headers (checkHeaders, then Mcp-Name and mirrored arguments). It
// returns the error to refuse it with (HTTP 400), or nil.
func checkStateless(snap *Snapshot, msg *schema.Message, meta schema.RequestMeta, r *http.Request) *schema.Error {
	if meta.ProtocolVersion == "" {
		// Served statelessly for its header: _meta must name the revision too.
		return schema.Errorf(schema.CodeInvalidParams, "params._meta must carry %s", schema.MetaProtocolVersion)
	}
	if rpcErr := checkHeaders(msg, meta.ProtocolVersion, r); rpcErr != nil {
		return rpcErr
	}
	if meta.ClientCapabilities == nil {
		return schema.Errorf(schema.CodeInvalidParams, "params._meta must carry %s", schema.MetaClientCapabilities)
	}
	member := schema.NameMember(msg.Method)
	if member == "" {
		return nil
	}
	var want string
	_ = schema.ScanObject(msg.Params, func(k, v []byte) {
		if string(k) == member {
			_ = json.Unmarshal(v, &want)
		}
	})
	vals := r.Header.Values(schema.HeaderName)
	if len(vals) != 1 {
		return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: one Mcp-Name header is required for %s", msg.Method)
	}
	got, ok := schema.DecodeHeaderValue(vals[0])
	if !ok {
		return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: the Mcp-Name header value is malformed")
	}
	if got != want {
		return schema.Errorf(schema.CodeHeaderMismatch,
			"Header mismatch: Mcp-Name header value %q does not match body value %q", got, want)
	}
	if t := snap.Tool(want); msg.Method == schema.MethodToolsCall && t != nil && t.TaskSupport() == schema.TaskSupportRequired &&
		!schema.HasExtension(meta.ClientCapabilities, schema.ExtensionTasks) {
		return missingTasksExtension("tool " + want)
	}
	if hp := snap.headers[want]; hp != nil && msg.Method == schema.MethodToolsCall {
		if rpcErr := checkParamHeaders(hp, lookup(msg.Params, []string{"arguments"}), r.Header); rpcErr != nil {
			return rpcErr
		}
	}
	return nil
}

// openStateless prepares a stateless message for dispatch, or answers it
// and returns false: a request's version, _meta and headers must check
// out, and it gets a session that lives as long as the request, from its
// _meta (revision, client capabilities, log level) and, when it retries
// an input_required answer, its inputResponses and requestState.
func (g *Gateway) openStateless(w http.ResponseWriter, x *exchange, meta schema.RequestMeta) bool {
	x.stateless = true
	msg := x.msg
	var rpcErr *schema.Error
	switch msg.Kind() {
	case schema.KindRequest:
		rpcErr = checkStateless(g.reg.Load(), msg, meta, x.r)
	case schema.KindNotification:
		rpcErr = checkHeaders(msg, meta.ProtocolVersion, x.r)
	}
	if rpcErr != nil {
		writeError(w, http.StatusBadRequest, msg.ID, rpcErr)
		return false
	}
	sess := newSession("", sessionRecord{Revision: meta.ProtocolVersion, Capabilities: meta.ClientCapabilities,
		Principal: g.principal(x.r)})
	// Log messages only for a request that asked for them, at its level.
	sess.quiet = meta.LogLevel == ""
	sess.logLevel.Store(int32(max(0, slices.Index(logLevels, meta.LogLevel))))
	if msg.Method != schema.MethodCompletionComplete {
		sess.inputResponses, sess.requestState = retryInputs(msg.Params)
	}
	x.sess = sess
	return true
}

// cacheHints are the cache hints of a stateless result of method: the
// lists and server/discover may be kept and shared for listTTLMs (the
// registry changes rarely, and list_changed notifications tell of
// changes); a resource read is private and fresh only now; other results
// get none.
func cacheHints(method string) *schema.CacheHints {
	switch method {
	case schema.MethodServerDiscover, schema.MethodToolsList, schema.MethodPromptsList,
		schema.MethodResourcesList, schema.MethodResourcesTemplatesList:
		return &schema.CacheHints{TTLMs: listTTLMs, Scope: "public"}
	case schema.MethodResourcesRead:
		return &schema.CacheHints{TTLMs: 0, Scope: "private"}
	}
	return nil
}

// statelessError is how the stateless revision answers an error: an
// unknown resource is Invalid params (-32602, where the session revisions
// say -32002), and a missing client capability is HTTP 400.
func statelessError(status int, e *schema.Error) (int, *schema.Error) {
	switch {
	case e.Code == schema.CodeResourceNotFound:
		e = &schema.Error{Code: schema.CodeInvalidParams, Message: e.Message, Data: e.Data}
	case e.Code == schema.CodeMissingClientCapability && status == 0:
		status = http.StatusBadRequest
	}
	return status, e
}

// discoverResult is the result of server/discover, before the fields
// every final result gets.
func (g *Gateway) discoverResult() []byte {
	b, _ := json.Marshal(struct {
		SupportedVersions []string       `json:"supportedVersions"`
		Capabilities      map[string]any `json:"capabilities"`
		Instructions      string         `json:"instructions,omitempty"`
	}{schema.SupportedVersions(), statelessCapabilities(), g.cfg.Instructions})
	return b
}

// statelessCapabilities are the server capabilities of the stateless
// revision.
func statelessCapabilities() map[string]any {
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
