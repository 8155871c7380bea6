// Package upstream hosts an existing MCP server in a worker group: the
// group's requests are forwarded to the server, so that a published stdio
// server, or an HTTP one, gets mcpstream's durable queues, admission,
// sessions on any gateway, tracing and replay, and scales by adding
// worker replicas (`mcpstream worker --group NAME --upstream 'CMD ARGS'`).
//
// # Data flow
//
// A [Host] owns a workers.Group and a pool of Config.Pool connections to
// the server (pool.go): stdio processes it starts (stdio.go), or sessions
// of a Streamable HTTP or 2024-11-05 HTTP+SSE endpoint (http.go). Each
// connection is initialized as a client would (initialize, then
// notifications/initialized, then logging/setLevel debug when the server
// logs: the gateways filter by each session's level) and speaks raw
// JSON-RPC through the official go-sdk's mcp.Connection (conn.go).
//
// Once one connection is up, the host lists the server's tools, prompts,
// resources and resource templates (every page), names them (names.go)
// and gives them to the group as raw definitions (workers.Group.SetRaw):
// the runtime registers them in the registry bucket, where the gateways
// see them, with their schemas and annotations as the server publishes
// them. When a connection says a list changed
// (notifications/*/list_changed) the lists are read again from it and the
// registry follows: additions registered, removals deleted, and the
// gateways tell their clients.
//
// A request the gateway publishes (tools/call, prompts/get,
// resources/read, completion/complete) runs the group's raw handler
// (forward.go): it picks a connection, rebuilds the params around the
// server's own name of the tool or prompt, sends them with an id of its
// own, and returns the server's result as it is, unknown members
// included (nothing is decoded into SDK types and encoded again).
//
// # Ids, progress, logs and requests to the client
//
// Every request on a connection gets a fresh id from the connection's
// counter, so requests of different clients on one process never share
// an id; answers find their caller by it. A call whose client asked for
// progress carries, as its progress token, its own id on the connection:
// the server's notifications/progress go to that call, and on to its
// client under the client's token. No client's own token reaches the
// server (completion/complete's params go without the client's _meta),
// so the server's progress never names another call's id. A log message (notifications/message)
// and a request of the server to the client (sampling, elicitation,
// roots) name no request over stdio, so they are relayed to a call only
// when exactly one client call is in flight on that connection; otherwise
// a log message goes to the worker's log and a request is answered with a
// JSON-RPC error at once. Config.MaxPending 1 makes every such message
// attributable, at the cost of one call per connection at a time. Over
// Streamable HTTP the server sends them on the call's own event stream,
// which the bridge marks with the call's id (bridge.Bridge.MarkRelated):
// there attribution is exact however many calls run at once. The
// 2024-11-05 HTTP+SSE transport has one stream, and the stdio rule. A
// call cancelled (its deadline, its client) that the server has not
// answered yet still runs there, so it counts as in flight: until its
// answer comes, or the connection is recycled Config.HangGrace past its
// deadline, a message that names no request, or names that one, is
// relayed to no call (never to another session's call taken on
// meanwhile). Relayed requests travel as workers.Call.Request does:
// through the gateway holding the client, and the answer back to the
// server. mcpstream declares sampling and elicitation to the server on its
// session connections, not roots: a pooled process serves many clients,
// whose roots differ.
//
// When a call's context ends first (its deadline, the client's
// notifications/cancelled, the drain deadline) the server is sent
// notifications/cancelled for it.
//
// # Naming
//
// Tools and prompts are registered under the server's names
// ([PrefixNone], the default: what clients, and MCP Apps whose HTML names
// their tools, expect), with Config.PrefixName and Config.Separator before
// every name ([PrefixAlways]), or only before a name another group has
// ([PrefixConditional]). Prefix and separator must be within
// [a-zA-Z0-9._-]. Config.Include and Config.Exclude filter the server's
// names (path.Match patterns). Resources and templates keep their URIs.
// A name (URI) another group has registered is never taken over: the
// definition is left out, an error logged naming both groups, and
// Host.Refused lists it; the runtime's registration checks it again
// (a conditional write of the registry entry) against a group registering
// the same name at the same moment.
//
// # Affinity
//
// By default (Config.Affinity [AffinityNone]) a call goes to the pooled
// connection with the fewest requests in flight: right for stateless
// servers, which most are. [AffinitySession] sends every call of a client
// session to one pooled connection of the worker: the session id hashes
// to a slot. Across replicas: the gateways route a session's calls to one
// partition of the group's streams, but every replica competes for every
// partition, so give each replica its share (workers.Options.Share,
// `--partition-share I/N`): replica I of N pulls only the partitions p
// with p mod N == I, and a session reaches one process of one worker
// while both live. When that process restarts (it crashed or was
// recycled) the session's calls reach the new one, which does not have
// the old one's state: the server sees a new client. When the worker
// dies, its partitions are served by no one until a replica with its
// share comes back (a Kubernetes StatefulSet restarts it under the same
// ordinal): the sessions' calls wait, up to their deadline, and then
// reach a new process. Choose affinity for servers that keep state
// between calls without a session of their own (a browser, a REPL);
// choose the pool for the rest.
//
// # Faults
//
//   - A connection that goes (a process that exits or is killed, an HTTP
//     session that fails or that the server forgets, answering HTTP 404
//     to its Mcp-Session-Id, a message over Config.MaxMessage) is started
//     again after a backoff that doubles from Config.MinBackoff to
//     Config.MaxBackoff, and starts from the minimum again after one that
//     lived 30s. A process's stderr goes to the worker's log, line by
//     line.
//   - Its requests in flight are answered at once: a request that can run
//     twice with no harm (a tool annotated readOnlyHint or idempotentHint,
//     which is also what mcpstream's own redelivery rules go by;
//     prompts/get, resources/read, completion/complete) is sent once more
//     on another connection; any other gets a JSON-RPC error (-32603)
//     saying the connection was lost and the request was not sent again.
//   - A call is bounded by its deadline, as any handler is. A request
//     that the server has still not answered Config.HangGrace past its
//     deadline marks its connection hung (one its client cancelled sooner
//     may run on until then: a client's cancellation does not stop a
//     process other sessions share): it is recycled
//     (its process stopped: stdin closed, SIGTERM, SIGKILL, to its process
//     group) and started again.
//   - Until one connection has initialized, and the definitions are
//     registered, [Host.Ready] reports why not, naming the server and its
//     last error ("has not initialized (3 attempts): initialize: no answer
//     within 30s"); the worker's /readyz says so. Starts go on with backoff
//     meanwhile.
//
// # Bounds
//
// One message from the server: Config.MaxMessage (4 MiB). Requests in
// flight per connection: Config.MaxPending (16; beyond it on every
// connection a call is refused at once), and as many relayed requests to
// clients. One sync reads at most 100 pages and 10,000 items a list. A
// stderr line is logged up to 8 KiB. A write to the server keeps its
// caller until the caller's deadline, 10s at most; to a process that has
// stopped reading its stdin (its pipe full), a write not done 10s after
// it began recycles the connection, since a message half written cannot
// be taken back.
//
// # The stateless revision
//
// A client that speaks the stateless revision (2026-07-28) is answered by
// a server that speaks it too as that client (stateless.go). Its requests
// go to a second pool of Config.Pool connections, started on the first
// such call and never initialized: server/discover, with the revision's
// _meta, says whether the server speaks it. Each request carries in its
// _meta the client's revision and capabilities (workers.Call.Revision,
// ClientCapabilities), mcpstream as clientInfo and log level debug (the
// gateway drops what the client did not ask for), and the client's
// inputResponses and requestState as it sent them
// (workers.RawRequest); the server's answer comes back as it is: -32021
// for a capability the client did not declare, input_required with the
// server's own inputRequests keys and requestState. Only resultType
// "complete" and the server's serverInfo are left out of a result: the
// gateway sets its own. A server's request to the client on such a
// connection (the revision has none) is answered with an error. Each
// connection keeps a subscriptions/listen open for the list changes the
// server's capabilities declare, which register the lists again as on a
// session connection. A server that does not speak the revision (a
// JSON-RPC error to server/discover, no 2026-07-28 among its
// supportedVersions, the HTTP+SSE transport) stops this pool for good,
// and the calls take the session connections. No answer to
// server/discover within Config.InitTimeout (a server slow to start) is
// a failed start like any other: the connection is started again with
// backoff, and until one is up the calls take the session connections,
// as they do whenever the pool has none up and its last start failed.
// The go-sdk speaks the revision over stdio, and
// over HTTP only when its handler is stateless. Calls of a tool that
// supports tasks take the session connections too, and over HTTP so do
// those of a tool whose arguments are marked x-mcp-header: the server
// would want the Mcp-Param headers, which the bridge does not write.
//
// A pooled process keeps its own state: a list the server changes on a
// stateless connection is registered from there, but the session
// connections' processes do not have the change, as between the
// processes of one pool.
//
// # Tasks and input-required
//
// A tool whose execution declares task support is registered with it: a
// client that asks for a task gets one of mcpstream's (workers'
// Call.Detach), whose run forwards the call to the server as an ordinary
// call, on a session connection. When a stateless client's call takes a
// session connection, a request of the server to the client becomes
// mcpstream's own input_required answer (workers.Call.Request), and the
// client's retry runs the call on the server again, this time with the
// answer ready.
package upstream
