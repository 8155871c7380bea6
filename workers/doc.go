// Package workers is mcpstream's worker runtime and tool SDK.
//
// A [Group] is a named set of tools. [AddTool] turns a typed Go function into
// a tool whose JSON Schema is inferred from its input struct. [Group.Run]
// serves the group: it provisions the group's durable pull consumer on every
// partition stream, registers the tools in the registry bucket with an
// expiring heartbeat, pulls envelopes in batches (Consume, not a Fetch loop),
// runs handlers in a bounded pool under the envelope's deadline, stores the
// result, replies on the envelope's reply subject and acknowledges.
//
// While it runs, a handler can tell the client how far it has come
// ([Call.Progress]) and send it log messages ([Call.Log]): they travel on
// core NATS to the gateway holding the client, ahead of the result. A
// client's notifications/cancelled reaches every worker on
// streams.CancelSubject, and the one running the request cancels the
// handler's context, with the client's reason as its cause. A handler can
// also ask the client something ([Call.Sample], [Call.Elicit],
// [Call.ListRoots], [Call.Request]): the request reaches the client through
// the gateway holding it, and the answer comes back, through whichever
// gateway the client posts it to, on a core NATS subject the id names.
//
// Pulls are heartbeated: when the consumer's leader dies with a replica's
// pull request, two missed heartbeats make the replica pull again from the
// new leader, in seconds, not at the pull's expiry.
//
// Delivery is at least once. A redelivered envelope whose result is in the
// result bucket is answered from it instead of run again (the result is
// stored, again if need be, before the envelope is acknowledged); an expired one is
// dropped; one that cannot be decoded, or whose handler panics, is copied to
// the dead-letter stream.
//
// With [Options.Metrics] set, a running group counts its deliveries by
// outcome (ok, error, expired, redelivered, duplicate), times its handlers
// by kind and tool or prompt name, and shows its busy handlers, as
// Prometheus metrics (metrics.go); groups in one process share them.
package workers
