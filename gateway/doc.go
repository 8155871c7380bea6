// Package gateway is mcpstream's MCP front: it serves MCP clients over
// HTTP and carries their requests through NATS JetStream to worker groups.
//
// # Transports
//
// One endpoint (the [Gateway] is its handler; [Gateway.Mount] serves it at
// [MCPPath]) speaks Streamable HTTP for every revision, chosen per request:
// the session revisions 2025-03-26 (with JSON-RPC batches), 2025-06-18 and
// 2025-11-25, where initialize opens a session that the session bucket
// keeps and every gateway caches, so that any gateway serves any session;
// and the stateless revision 2026-07-28, where each request carries its
// revision and the client's capabilities in _meta and mirrors its method
// and target into headers that must match the body. The 2024-11-05
// HTTP+SSE transport has a stream and a POST path of its own
// ([Gateway.HTTPSSE]). Whatever the transport, a message is parsed and
// checked against its revision's rules, then handed to one dispatch
// function with the way its answer goes back: an HTTP response (JSON, or
// an SSE stream once a worker sends a notification), a slot in a batch's
// response, or the session's HTTP+SSE stream.
//
// # Data path
//
// The gateway answers initialize, ping, the lists (from an immutable
// snapshot of the registry bucket, read without locks), logging levels and
// resource subscriptions, server/discover, subscriptions/listen and the
// tasks extension's requests itself. tools/call, prompts/get,
// resources/read and completion/complete become msgpack envelopes,
// published to the partition stream of the group that serves the tool,
// prompt or resource; the worker's reply comes back on core NATS, to the
// gateway's own subject, where a router hands it to the waiting request.
// Notifications a worker sends about a call travel the same way, ahead of
// the result. A request a worker makes of the client goes out on the
// call's event stream, and the client's answer, posted to any gateway,
// goes back to the worker by its id. A client's cancellation
// (notifications/cancelled, or a stateless request's closed stream) goes
// to every worker.
//
// A publish the stream refuses for want of a leader, or that no
// acknowledgement answers within two to three seconds, is sent again
// under the same Nats-Msg-Id, so the stream drops a copy. A reply lost
// while the gateway reconnected to another NATS node is found in the
// result bucket or, for a request that may run twice, run again.
//
// # Admission
//
// Nothing waits for room: a call is admitted at once, or refused with
// -32000 and, over HTTP, 503 with Retry-After. A session may have
// [Config.MaxSessionInFlight] calls waiting on workers, a principal
// [Config.MaxPrincipalInFlight] over all its sessions, and the gateway an
// in-flight limit that adapts to the queueing calls see (their latency
// less their handler's run time) and, with [Config.CPUQueueTarget], falls
// while Go's scheduling latency shows the gateway's CPU saturated. One
// call to package admission takes the three caps together. Then the
// call's worker group admits it (groupload.go): from the load reports
// every gateway hears on the group's load subject, the gateway estimates
// the wait the call would have behind the group's backlog and refuses it
// beyond the group's queue target ([Config.GroupQueueTarget]), so a slow
// group's calls neither queue for seconds nor take the fast groups' room.
// What a client
// posts to finish calls in flight (its answers to workers' requests, its
// cancellations) is always taken. A draining gateway refuses new
// requests the same way, for their clients to try another gateway.
//
// # Hostile clients
//
// Every phase of a connection has a deadline, none a whole request: its
// headers ([Config.HeaderTimeout]), its body ([Config.BodyTimeout] plus
// what [Config.MinBodyRate] allows for the bytes sent), each write of an
// answer, and the wait for the next request ([Config.IdleTimeout]);
// [Gateway.ConfigureServer] and [Gateway.LimitListener], which caps the
// connections ([Config.MaxConns]) and answers those beyond the cap with
// 503 at once, apply them to an http.Server. A body must be JSON text by
// RFC 8259 (UTF-8, no lone surrogates) or is -32700, and is bounded in
// size and nesting before it is decoded; the bodies held at once are
// bounded together ([Config.MaxBodyMemory]), past which one is refused
// with 503 as it arrives. A JSON-RPC batch, on either
// transport that allows one, holds at most [Config.MaxBatch] messages (or
// is refused whole with 400 before any of it runs) and its requests run
// [Config.BatchConcurrency] at a time, so that one POST holds a bounded
// number of goroutines, calls and answers. With principals,
// [Config.PrincipalRate] limits each one's requests: a request over the
// rate is held up to [Config.PrincipalRateHold], served if its token
// comes within the hold and refused with 429 after it otherwise, so a
// client that ignores Retry-After is slowed down, not answered at once.
//
// # Authentication
//
// Every request, on every transport, passes the same front before its
// body is read: the metrics count it; a browser page on an origin the
// DNS-rebinding check admits gets CORS (preflights are answered there),
// and any other origin is refused 403; and [Config.Auth] (package auth)
// names its principal or refuses it. An auth.JWT makes the gateway an
// OAuth 2.1 resource server, which also serves RFC 9728 protected resource
// metadata; auth.WatchAPIKeys accepts API keys from a file of hashes it
// follows as it changes (a revoked key is refused within about a second,
// and the event streams it opened end at the next keep-alive, as do those
// of an expired token),
// a key's scopes checked by the rule a JWT's are; an auth.Header trusts an
// authenticating proxy. A principal
// owns the sessions and tasks it starts, and counts against its in-flight
// cap.
//
// # Events
//
// List changes and resource updates go through the events stream, which
// every gateway follows to tell the event streams it holds: session GET
// streams (resumable with Last-Event-ID on any gateway; a new GET for a
// session replaces, and closes, the stream a gateway holds for it),
// subscriptions/listen streams and HTTP+SSE streams. Event streams run on
// hijacked connections, a few KB each, with every write under a short
// deadline: a client that stops reading is cut off rather than buffered
// for. On a connection that cannot be hijacked (HTTP/2, or a wrapping
// ResponseWriter that hides Hijack) a session's GET is answered 405, the
// spec's answer of a server that offers no stream, and the other two 505.
//
// # Lifecycle
//
// [New] starts the gateway; [Gateway.Drain] refuses new requests and ends
// the event streams that carry no answers (session GET streams,
// subscriptions/listen streams) at once, and an HTTP+SSE stream once the
// calls its session posted here, or to another gateway before the drain,
// are answered. [Gateway.Shutdown] drains
// and waits, within its ctx, for the requests in flight; at the ctx's end
// the calls still waiting on workers are answered with -32000 (503 where
// the response has not started) on whatever transport they came, so that
// an http.Server's Shutdown after it finds nothing left to cut. A worker
// may still run such a call. [Gateway.Close] then stops every goroutine
// the gateway started (watchers, the reply sweep, event streams) and
// waits for them.
//
// # Metrics
//
// With [Config.Metrics] set, the gateway registers Prometheus metrics
// there: requests by method and outcome and their duration, refusals by
// reason and their duration, the queueing the adaptive limit sees, each
// worker group's calls admitted and refused and the wait a call to it
// would be expected to have, and gauges of calls in flight, the limit,
// open event streams and cached sessions.
//
// # Tracing
//
// With [Config.TracerProvider] set, each request is a SERVER span named
// "{mcp.method.name} {target}" whose parent is the trace context the client
// sent (params._meta, else the traceparent header), and each publish of
// its envelope a PRODUCER span whose context the envelope and the NATS
// headers carry to the worker; with [Config.MeterProvider],
// mcp.server.operation.duration and mcp.server.session.duration are
// recorded as the MCP semantic conventions define them. [Gateway.Ready]
// is the readiness check /readyz serves. docs/tracing.md has the whole
// trace.
package gateway
