// Package gateway is mcpstream's MCP front: the Streamable HTTP endpoint
// ([Gateway] is its http.Handler), sessions kept in the session bucket and
// cached, the registry snapshot built from a watch of the registry bucket and
// read without locks, admission control, and the reply router that matches
// replies on mcp.reply.<gateway-id> to waiting requests.
//
// initialize, ping and tools/list are answered here; tools/call becomes a
// msgpack envelope published to the serving group's partition stream, and
// the worker's reply comes back on core NATS.
package gateway
