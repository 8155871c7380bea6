// Package gateway is mcpstream's MCP front: the Streamable HTTP endpoint
// ([Gateway] is its http.Handler), sessions kept in the session bucket and
// cached, the registry snapshot built from a watch of the registry bucket and
// read without locks, admission control, and the reply router that matches
// replies on mcp.reply.<gateway-id> to waiting requests.
//
// initialize, ping and tools/list are answered here; tools/call becomes a
// msgpack envelope published to the serving group's partition stream, and
// the worker's reply comes back on core NATS.
//
// Notifications that workers send about a call turn its response into an
// SSE stream (when the client accepts one) and are relayed in order before
// the result; log messages below the session's level (logging/setLevel)
// are dropped. A client's notifications/cancelled is passed to the workers.
// A change of the tool list is announced on every open GET stream. Sessions
// of revision 2025-03-26 may send JSON-RPC batches.
//
// Admission is immediate: a session may have MaxSessionInFlight calls
// waiting, and the gateway's in-flight limit adapts to the queueing calls
// see (latency less the handler's reported run time), refusing the excess
// with 503 before reading it. GET event streams run on hijacked connections
// (a few KB each) with keep-alives written under a short deadline, so slow
// readers are cut off rather than buffered for.
package gateway
