// Package streams is mcpstream's JetStream topology as code: subject and
// stream names, the partition function, stream, consumer and bucket
// configs ([Topology]), idempotent provisioning ([Provision], [Ensure],
// [EnsureGroup]), the JetStream errors mcpstream acts on ([Retryable],
// [IsStoreFailed]) and the embedded nats-server used by `mcpstream dev`
// and tests ([StartEmbedded]). Gateways and workers meet here and in
// package schema only.
//
// # Requests
//
// Requests for worker group g with routing key k go to subject
// mcp.req.<g>.<p> ([RequestSubject]) with p = [Partition](k, P), captured
// by stream MCP_REQ_<p> ([StreamName]; Limits retention, bounded MaxAge
// and MaxBytes, oldest dropped first). Each group has one durable pull
// consumer per partition stream ([ConsumerName], [EnsureGroup]), shared by
// all its replicas. The streams' acknowledgements of a gateway's requests
// come back to mcp.reply.<gateway-id>.ack.<key> ([PubAckPrefix]).
//
// # Replies and messages on core NATS
//
// Replies, and the notifications and requests to the client that precede
// them, travel on core NATS to mcp.reply.<gateway-id> ([ReplySubject]).
// The client's answer to a worker's request comes back, through any
// gateway, on a subject its id names ([NewClientRequest],
// [AnswerSubject]). Cancellations go to every worker on [CancelSubject];
// the messages of a 2024-11-05 HTTP+SSE session go to the gateway holding
// its stream on [SSESubject]. A group's replicas and the gateways report
// its load on [LoadSubject], for the gateways' admission per group.
//
// # Streams and buckets
//
// Besides the request streams, [Provision] creates the events stream
// [EventsStream] (list changes and resource updates, kept
// [EventsMaxAge] so a client can resume its event stream on any
// gateway), the dead-letter stream [DLQStream] (mcp.dlq.<group>,
// [DLQSubject]) and four buckets: [RegistryBucket] (tool, prompt,
// resource and template definitions, worker heartbeats, the topology
// under [TopologyKey] and the request-state key under [StateKeyKey]),
// [SessionBucket], [ResultBucket] (recent results by request key,
// [ResultKey]) and [TaskBucket].
//
// # Recorded results
//
// A worker group that records its results has a stream of its own,
// MCP_RESULTS_<group> ([RecordStream], [Topology.RecordConfig]), created
// by the group's replicas, not by [Provision]: each answer its handlers
// produce, with the handler's run time, goes to
// mcp.results.<group>.<ResultKey(key)> ([RecordSubject]), one record a
// request, bounded by age and bytes, oldest dropped first.
// [OpenRecords] and [Records.Lookup] read the record of a request.
//
// # Replay
//
// [Replay] reads the request streams back: every partition (or only the
// one a session's requests go to), through ordered, ephemeral consumers
// that it deletes when done, so the groups' durable consumers and what
// they deliver are untouched. A group filter is the server's; the
// streams' next requests are merged by the time they were stored, one
// buffered read per stream, so memory does not grow with the range. The
// range ends at the last request stored when the replay started (or at
// ReplayOptions.Until); with Follow it goes on with requests as they are
// stored.
package streams
