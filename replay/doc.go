// Package replay reads the traffic the request streams recorded, prints it
// as JSON lines, and sends it again to an MCP endpoint.
//
// Data flow: [streams.Replay] reads every partition stream through
// ordered, ephemeral consumers (never the worker groups' durable ones),
// merges them in time order and passes each request that matches the
// filters on; [NewLine] decodes its envelope into a [Line]; with results
// asked for, the group's recorded result is looked up by the request's key
// ([streams.LookupRecord]); sensitive and --redact'ed fields are masked
// for printing; [Rerun] sends the lines' calls to an endpoint and, with
// diffs asked for, compares each answer with the recorded one.
package replay
