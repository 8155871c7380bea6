// Package schema is mcpstream's wire contract, shared by gateways and
// workers and free of I/O: JSON-RPC 2.0 framing with byte-exact ids, MCP
// method names, error codes and protocol revisions, the versioned msgpack
// [Envelope] and [Reply], and the JSON <-> msgpack compaction of params and
// results ([JSONToMsgpack], [MsgpackToJSON], and [MsgpackValue], the value a
// worker validates arguments as).
package schema
