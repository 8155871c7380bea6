package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// The stateless revision (2026-07-28) is forwarded end to end: a request
// of a client that speaks it goes to the upstream with the client's
// revision and capabilities in its _meta, and the upstream answers it as
// it would answer that client: -32021 for a capability the client did
// not declare, input_required with its own inputRequests keys and
// requestState, the client's retry (inputResponses, requestState)
// forwarded unchanged. A connection initialized with a session revision
// cannot carry this (an SDK server reads the revision of the session, and
// asks its questions as requests to the client), so these requests go to
// a pool of their own: connections never initialized, started on the
// first such call. server/discover, with the revision's _meta, tells
// whether the upstream speaks it; when it says it does not (a JSON-RPC
// error, no 2026-07-28 among its supportedVersions, or the HTTP+SSE
// transport) the pool stops for good and the calls take the session
// connections, as a session client's do. No answer within
// Config.InitTimeout says nothing (an upstream slow to start): the start
// failed, and is tried again with backoff as any other; meanwhile the
// calls take the session connections (errStatelessDown).

// errNoStateless is why the stateless pool stops: the upstream does not
// speak the stateless revision.
var errNoStateless = errors.New("the upstream does not speak the stateless revision")

// errStatelessDown is why a call of a stateless client takes a session
// connection while the stateless pool has none up and its last start
// failed: it is being started again.
var errStatelessDown = errors.New("no stateless upstream connection is up")

// statelessPool returns the pool of stateless connections, starting it on
// first use; nil before Run has started the pools or once they stopped.
func (h *Host) statelessPool() *pool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.spoolStopped || h.spoolCtx == nil {
		return nil
	}
	if !h.spoolStarted {
		h.spoolStarted = true
		h.spoolRun.Add(1)
		go func() { defer h.spoolRun.Done(); h.spool.run(h.spoolCtx) }()
	}
	return h.spool
}

// dialStateless starts one connection that speaks the stateless revision:
// not initialized; server/discover says whether the upstream speaks it.
// A start that fails because it does not wraps errNoStateless.
func (h *Host) dialStateless(ctx context.Context, slot int) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.InitTimeout)
	defer cancel()
	transport := h.cfg.Transport
	if transport == TransportAuto {
		switch {
		case len(h.cfg.Command) > 0:
			transport = TransportStdio
		case h.sse.Load():
			transport = TransportSSE
		default:
			transport = TransportStreamable
		}
	}
	if transport == TransportSSE {
		return nil, fmt.Errorf("%w: the HTTP+SSE transport (2024-11-05) has none", errNoStateless)
	}
	k, err := h.open(ctx, transport, h.log.With("slot", slot, "revision", schema.Revision20260728))
	if err != nil {
		return nil, err
	}
	if err := k.discover(ctx, h.cfg.Version); err != nil {
		k.close(err)
		return nil, err
	}
	k.listen()
	return k, nil
}

// discover asks the upstream, on a connection not initialized, which
// revisions it speaks (server/discover); an answer without 2026-07-28 or
// a JSON-RPC error wraps errNoStateless. No answer before ctx's deadline
// does not: the upstream may be slow to start, and discovery is tried
// again on the next start.
func (k *conn) discover(ctx context.Context, version string) error {
	meta, err := json.Marshal(statelessMeta{ProtocolVersion: schema.Revision20260728, ClientCapabilities: json.RawMessage(`{}`),
		ClientInfo: clientInfo{Name: "mcpstream", Version: version}})
	if err != nil {
		return fmt.Errorf("server/discover: encoding the params: %w", err)
	}
	k.meta = meta
	params, _ := json.Marshal(struct {
		Meta json.RawMessage `json:"_meta"`
	}{meta})
	res, err := k.roundTrip(ctx, schema.MethodServerDiscover, params, nil)
	var re *rpcError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%w: server/discover: %v", errNoStateless, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("server/discover: no answer in time: %w", err)
	case err != nil:
		return fmt.Errorf("server/discover: %w", err)
	}
	var d struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(res, &d); err != nil {
		return fmt.Errorf("%w: server/discover: decoding the result: %v", errNoStateless, err)
	}
	if !slices.Contains(d.SupportedVersions, schema.Revision20260728) {
		return fmt.Errorf("%w: server/discover: supported versions %v", errNoStateless, d.SupportedVersions)
	}
	if err := json.Unmarshal(res, &k.result); err != nil {
		return fmt.Errorf("%w: server/discover: decoding the capabilities: %v", errNoStateless, err)
	}
	return nil
}

// listen opens subscriptions/listen on a stateless connection for the
// list changes its capabilities declare: in the stateless revision the
// upstream tells of them only there. A change made on this connection
// (a tool that adds a tool) is then read from it (Host.onNotify), as on a
// session connection. The request stands as long as the connection.
func (k *conn) listen() {
	caps := k.result.Capabilities
	n := map[string]bool{}
	if caps.Tools != nil {
		n["toolsListChanged"] = true
	}
	if caps.Prompts != nil {
		n["promptsListChanged"] = true
	}
	if caps.Resources != nil {
		n["resourcesListChanged"] = true
	}
	if len(n) == 0 {
		return
	}
	params, _ := json.Marshal(struct {
		Meta          json.RawMessage `json:"_meta"`
		Notifications map[string]bool `json:"notifications"`
	}{k.meta, n})
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		// It ends with the connection (answered then with its error), or
		// when the upstream ends the subscription.
		if _, err := k.roundTrip(context.Background(), schema.MethodSubscriptionsListen, params, nil); err != nil && k.err() == nil {
			k.log.Info("the upstream refused subscriptions/listen; its list changes are seen only on session connections", "err", err)
		}
	}()
}

// statelessMeta is the _meta of a request on a stateless connection.
type statelessMeta struct {
	ProtocolVersion    string          `json:"io.modelcontextprotocol/protocolVersion"`
	ClientCapabilities json.RawMessage `json:"io.modelcontextprotocol/clientCapabilities"`
	ClientInfo         clientInfo      `json:"io.modelcontextprotocol/clientInfo"`
	LogLevel           string          `json:"io.modelcontextprotocol/logLevel,omitempty"`
	// ProgressToken is the request's id on its connection, when the
	// client asked for progress (see progressMeta).
	ProgressToken *int64 `json:"progressToken,omitempty"`
}

// clientInfo is how mcpstream names itself to the upstream.
type clientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// statelessMeta returns the _meta a client's request carries to the upstream:
// the client's revision and capabilities, mcpstream as the client
// implementation (the gateway keeps no clientInfo of the client), and log
// level debug: the gateway drops what the client did not ask for.
func (h *Host) statelessMeta(call *workers.Call) statelessMeta {
	caps := call.ClientCapabilities()
	if len(caps) == 0 {
		caps = json.RawMessage(`{}`)
	}
	return statelessMeta{ProtocolVersion: call.Revision, ClientCapabilities: caps,
		ClientInfo: clientInfo{Name: "mcpstream", Version: h.cfg.Version}, LogLevel: "debug"}
}

// statelessParams is base (the params the session path sends) with meta
// as its _meta, and the client's inputResponses and requestState as the
// client sent them.
func statelessParams(base json.RawMessage, meta statelessMeta, req workers.RawRequest) json.RawMessage {
	p := map[string]json.RawMessage{}
	if len(base) > 0 {
		_ = json.Unmarshal(base, &p) // made here: an object
	}
	p["_meta"], _ = json.Marshal(meta)
	if len(req.InputResponses) > 0 {
		p["inputResponses"] = req.InputResponses
	}
	if req.RequestState != "" {
		p["requestState"], _ = json.Marshal(req.RequestState)
	}
	b, _ := json.Marshal(p)
	return b
}

// statelessResult is the upstream's result for the client, as it is but
// for two members the gateway sets itself: resultType "complete" (with
// the cache hints it gives a result of the method) and the upstream's
// serverInfo in _meta. An input_required result keeps its resultType,
// inputRequests and requestState.
func statelessResult(res json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(res, &p) != nil {
		return res
	}
	changed := false
	var typ string
	if json.Unmarshal(p["resultType"], &typ) == nil && typ == "complete" {
		delete(p, "resultType")
		changed = true
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(p["_meta"], &meta) == nil && meta[schema.MetaServerInfo] != nil {
		delete(meta, schema.MetaServerInfo)
		if len(meta) == 0 {
			delete(p, "_meta")
		} else {
			p["_meta"], _ = json.Marshal(meta)
		}
		changed = true
	}
	if !changed {
		return res
	}
	out, err := json.Marshal(p)
	if err != nil {
		return res
	}
	return out
}
