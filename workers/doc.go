// Package workers is mcpstream's worker runtime and tool SDK: worker
// groups pull MCP requests from NATS JetStream, run the handlers of their
// tools, prompts and resources, and reply to the gateway that holds the
// client.
//
// # Writing a group
//
// A [Group] is a named set of tools, prompts and resources served
// together; [NewGroup] makes one. [AddTool] turns a typed Go function into
// a tool: the JSON Schema of its input is inferred from the input struct
// (or given as is in [Tool.InputSchema]), arguments are validated against
// it before the handler runs, and a struct output becomes structured
// content with an output schema. [AddPrompt], [AddResource] and
// [AddResourceTemplate] add prompts and resources, [CompletePrompt] and
// [CompleteTemplate] suggestions for their arguments. A handler gets the
// request's context and a [Call]: the request's key, session, principal,
// protocol revision, delivery attempt and deadline, and what the handler
// can do while it runs (see Requests to the client, and Tasks).
// [Group.SetRaw] gives definitions as they are published instead, their
// schemas and annotations kept, served by one [RawHandler] on JSON params
// and results, and replaced as a whole (what is gone is deleted from the
// registry; a name another group registered is refused): package
// workers/upstream serves an existing MCP server that way.
//
// [Group.Run] serves the group until its context ends. Run it in as many
// processes as needed: the replicas compete for the group's durable
// consumers, so each one adds throughput. Run provisions the topology if
// none has been (streams.Ensure) and the group's consumers, writes the
// group's definitions to the registry bucket, where every gateway sees
// them within milliseconds, and keeps a heartbeat there that expires
// [Options.HeartbeatTTL] after the replica dies. Something added to a
// running group is registered at once. Every [Options.LoadInterval] the
// replica reports its load to the gateways (load.go): its handlers, their
// mean run time and, while all are busy, the group's backlog read from its
// consumers; the gateways refuse a call whose wait behind that backlog
// would exceed the group's [Options.QueueTarget].
//
// # Data path
//
// A gateway publishes each request as a msgpack schema.Envelope to the
// group's request subject on the partition its routing key maps to
// (streams.RequestSubject, streams.Partition). Each replica pulls envelopes
// in batches from every partition (Consume with pull heartbeats, so a pull
// lost with a consumer's leader is made again within seconds, and at once
// when the consumer's new leader is elected: consume.go), each batch
// bounded in envelopes ([Options.Batch]) and in bytes (streams.PullBytes),
// and hands them to a pool of [Options.Concurrency] goroutines; while every
// one is busy it pulls no more: backpressure, not an unbounded queue. For each
// envelope a pool goroutine:
//
//  1. drops it if its deadline has passed (the gateway no longer waits),
//     unless its call was detached into a task that still works, which
//     goes on (see Tasks);
//  2. answers a redelivery from the result bucket if the result is there;
//  3. runs the handler under a context that ends at the envelope's
//     deadline, or when the client cancels the request (its reason is the
//     context's cause), meanwhile telling the server with in-progress
//     acknowledgements that the envelope is being worked on, until its
//     deadline (the task's, once the call is detached), so that a
//     handler longer than AckWait is not redelivered (an envelope that
//     waits for a free handler is kept the same way);
//  4. stores the result in the result bucket and sends the reply on core
//     NATS to the envelope's ReplyTo subject, the gateway holding the
//     client, at once;
//  5. acknowledges the envelope once the result bucket holds the result.
//
// A result that comes after the deadline or after the client cancelled is
// neither stored nor sent: the gateway has answered already, or the
// client wants no answer. A request the client cancelled while its
// envelope waited in this replica's buffers is not run at all (cancel.go).
//
// # Recording results
//
// With [Options.RecordResults] a group also records what its handlers
// answer. Run creates or updates the group's record stream
// (streams.RecordStream, bounded by [Options.RecordMaxAge] and
// [Options.RecordMaxBytes], the oldest records dropped first), and in step
// 4 each run's answer, the same schema.Reply sent to the gateway, a result
// or a JSON-RPC error (a panic's internal error too) carrying the
// handler's run time in RunNs, is published to
// streams.RecordSubject(group, key) without waiting for the stream's
// acknowledgement: recording adds no wait to a call, and a record the
// stream does not take is logged and lost. The stream keeps one record a
// request, a new run's replacing the older. Answers from the result
// bucket, results that came too late or were cancelled, and tasks'
// outcomes are not recorded. `mcpstream replay --results` and
// streams.LookupRecord read the records. A tool's input struct field
// tagged `mcpstream:"sensitive"` is marked in its input schema
// (schema.SensitiveKeyword): replay masks its values.
//
// # Delivery
//
// Delivery is at least once. An envelope its replica did not acknowledge
// (the process died) is redelivered after AckWait, to any replica;
// [Call.Key] is the same on every delivery and [Call.Attempt] counts them.
// A redelivered envelope whose result is in the result bucket is answered
// from it, marked cached, instead of run again. A tool that can run twice
// with no harm, by its readOnlyHint or idempotentHint annotation
// (schema.Idempotent decides), is simply run again: its results are not
// stored. A request of a tool that must not run twice, delivered again or
// held unstarted in this replica's buffers for a quarter AckWait or more
// (behind a busy pool: long enough for the server to redeliver it), is
// claimed in the result bucket (streams.ClaimKey) before it runs, the
// claim renewed with the envelope's
// in-progress acknowledgements and marked done at the end, so that a copy
// the server redelivers to another replica while this one still holds it
// (buffered behind a busy pool longer than AckWait) is not run again: it
// is answered from the stored result, or left to the holder; the claim of
// a replica that died is taken over when it has not been renewed for
// three quarters of an AckWait. A request whose stored result or claim
// the bucket can neither read nor make (its leader being elected) is
// asked for again a second later; its last delivery runs it. With
// [Options.NoResultStore] every redelivery runs again. An
// envelope that cannot be decoded is copied to the group's dead-letter
// subject (streams.DLQSubject) and terminated. One whose handler panics is
// answered with an internal error, copied there too, and acknowledged.
//
// # Requests to the client
//
// While it runs, a handler can tell the client how far it has come
// ([Call.Progress]) and send it log messages ([Call.Log]): they travel on
// core NATS to the gateway holding the client, ahead of the result. It can
// ask the client something: [Call.Sample], [Call.Elicit],
// [Call.ListRoots], or any method with [Call.Request]. In the session
// revisions the request reaches the client through the gateway holding it,
// and the answer comes back, through whichever gateway the client posts it
// to, on a core NATS subject the request's id names. The stateless
// revision (2026-07-28) has no requests to the client: [Call.Ask] and
// [Call.AskAll] then end the run with [ErrInputRequired], the request is
// answered input_required with the questions, and the client's retry,
// carrying the answers, runs the handler again from the start; Ask then
// returns them. Ask works the same in both. [Call.ClientCan] and
// [Call.RequireCapability] check what the client declared, and
// [Call.ClientCapabilities] gives it as JSON. A raw handler (see
// [Group.SetRaw]) that forwards to a server speaking the stateless
// revision gets the retry's inputResponses and requestState as the client
// sent them ([RawRequest]) and returns the server's input_required result
// as it is; a requestState the runtime did not sign is refused only when
// such a handler asks the client itself.
//
// # Tasks
//
// A tool with [Tool.TaskSupport] may answer with a task (the tasks
// extension) when the client declared the extension: [Call.Detach] stores
// the task in the task bucket, answers the client with its handle at once,
// and lets the handler go on under a context bounded by the task's
// lifetime, which tasks/cancel ends. What the handler returns, or asks,
// becomes the task's state, which the client polls through any gateway.
// The envelope is kept in progress until the task's deadline, not the
// call's. The drain deadline (see Shutdown) ends a task's run too, and its
// envelope is handed back like any other; the replica that takes it, or
// the one it is redelivered to after its replica died, goes on with the
// task, the call's deadline passed or not: the handler runs again from the
// start, under the task's deadline (its creation plus its lifetime), and
// Detach returns the task's context at once, the task's entry kept; a
// gateway that still waits for the call is answered with the task's
// handle. The envelope of a call whose task has ended, or waits for the
// client's input, is not run again: a task that completed does not run
// twice. Past the call's deadline it is dropped; before it the gateway is
// answered with the task's handle, and the client polls the task for its
// outcome.
//
// # Shutdown
//
// When Run's context ends, the replica drains: it stops pulling, hands
// back to the stream every envelope it pulled but had not started, so that
// another replica runs it at once, and lets running handlers finish, their
// results stored, sent and acknowledged, until [Options.DrainTimeout]
// (default 25s, within Kubernetes' 30s grace period). Then it cancels the
// handlers still running, with [ErrDraining] as their context's cause, and
// hands their envelopes back unanswered: whatever such a handler returns
// is not sent, and another replica answers the gateway, which is still
// waiting. But a handler of a tool that must not run twice that returns
// a result that is not an error (its work done) is answered with it:
// running it again would repeat its side effects. Run then removes the
// replica's heartbeat and returns. A hand-back is a negative
// acknowledgement, which the server counts as a delivery; one on an
// envelope's last delivery (Topology.MaxDeliver) publishes it again
// instead, so that replicas draining in turn in a rolling deploy do not
// use up its deliveries.
//
// # Metrics
//
// With [Options.Metrics] set, a running group counts its deliveries by
// outcome in mcpstream_worker_deliveries_total (ok, error, expired,
// redelivered, duplicate, drained), times its handlers by kind and tool or
// prompt name in mcpstream_worker_handler_duration_seconds, and shows its
// busy handler goroutines in mcpstream_worker_handlers_busy, each
// labelled with the group. Groups in one process share the vectors.
//
// # Tracing
//
// With [Options.TracerProvider] set, each delivery is traced under the
// gateway's publish, whose context the envelope carries: its queue wait,
// a CONSUMER span with its delivery count, and the handler's span, which
// the handler's context carries so that a tool's own spans nest under it.
// Requests to the client are CLIENT spans, progress and log messages
// events. A delivery's log lines are logged with its context, so that a
// slog handler that reads the span from it (as the commands' does) names
// the trace.
package workers
