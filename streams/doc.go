// Package streams is mcpstream's JetStream topology as code: subject and
// stream names, the partition function, stream, consumer and bucket
// configs ([Topology]), idempotent provisioning ([Provision], [Ensure],
// [EnsureGroup]) and the embedded nats-server used by `mcpstream dev` and
// tests ([StartEmbedded]).
//
// Requests for worker group g with routing key k go to subject
// mcp.req.<g>.<p> with p = [Partition](k, P), captured by stream MCP_REQ_<p>
// (Limits retention, bounded MaxAge and MaxBytes, oldest dropped first). Each group
// has one durable pull consumer per partition stream, shared by all its
// replicas. Replies travel on core NATS to mcp.reply.<gateway-id>, and the
// streams' acknowledgements of a gateway's requests to
// mcp.reply.<gateway-id>.ack.<key>.
package streams
