// Package gateway is mcpstream's MCP front: the Streamable HTTP endpoint
// ([Gateway] is its http.Handler) and the 2024-11-05 HTTP+SSE transport
// ([Gateway.LegacySSE]), sessions kept in the session bucket and cached, the
// registry snapshot built from a watch of the registry bucket and read
// without locks, admission control, and the reply router that matches
// replies on mcp.reply.<gateway-id> to waiting requests (and a stream's
// refusal of a request, on mcp.reply.<gateway-id>.ack.<key>, to the request
// it refused).
//
// Every revision is chosen per request: the session revisions (2025-03-26
// with batches, 2025-06-18, 2025-11-25; 2024-11-05 over HTTP+SSE) and the
// stateless 2026-07-28 (modern.go: header and _meta validation,
// server/discover, resultType and cache hints, subscriptions/listen,
// input-required results, the tasks extension's tasks/* from the task
// bucket).
//
// initialize, ping and the lists are answered here; tools/call,
// prompts/get, resources/read and completion/complete become msgpack
// envelopes published to the serving group's partition stream, and the
// worker's reply comes back on core NATS. A publish that the stream refuses
// for want of a leader, or that no acknowledgement answers within two to
// three seconds (router.go), is sent again under the same Nats-Msg-Id. A
// reply lost while the gateway reconnected to another NATS node is found in
// the result bucket, or the request, when idempotent, runs again
// (recover.go). Notifications that workers send
// about a call turn its response into an SSE stream and are relayed in order
// before the result; requests a worker makes of the client go out the same
// way, and the client's answer, posted to any gateway, goes back to the
// worker by its id. Cancellation (notifications/cancelled, or a stateless
// request's closed stream) is passed to the workers.
//
// List changes and resource updates go through the events stream, which
// every gateway follows to tell its open streams (session GET streams,
// resumable with Last-Event-ID on any gateway, and listen streams).
//
// Every request, on every transport, is authenticated before its body is
// read ([Config.Auth], package auth): an auth.JWT makes the gateway an OAuth 2.1
// resource server, validating bearer JWTs against the authorization
// server's key set (issuer, audience, expiry, scopes) and serving RFC 9728
// protected resource metadata; an auth.Header trusts an authenticating
// proxy's header. The principal either names binds sessions and tasks to
// it and counts against its in-flight cap. Browser pages on the origins the
// DNS-rebinding check admits get CORS (cors.go); their preflights are
// answered before authentication.
//
// Admission is immediate: a session may have MaxSessionInFlight calls
// waiting, and the gateway's in-flight limit adapts to the queueing calls
// see (latency less the handler's reported run time), refusing the excess
// with 503 before reading it; with [Config.CPUQueueTarget] it also falls
// while Go's scheduling latency shows the gateway's CPU saturated
// (schedwatch.go). Event streams run on hijacked connections (a
// few KB each) with writes under a short deadline, so slow readers are cut
// off rather than buffered for.
//
// With [Config.Metrics] set, the gateway registers Prometheus metrics there
// (metrics.go): requests by method and outcome and their duration, refusals
// by reason, the queueing the adaptive limit sees, and gauges of calls in
// flight, the limit, open streams and cached sessions.
package gateway
