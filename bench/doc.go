// Package bench is a load driver for Streamable HTTP MCP servers.
//
// It speaks the Model Context Protocol over plain HTTP/1.1 rather than
// through an MCP SDK, so that the driver itself stays cheap next to the
// server it measures: each call's goroutine writes its request and reads
// the response on a pooled keep-alive connection itself (net/http's request
// and response code, without its Transport's two goroutines per
// connection). Each session initializes once, then issues tools/call requests
// either in a closed loop (one call at a time per session) or in an open
// loop (arrivals at a constant rate, latency measured from the intended send
// time so that a slow server cannot hide its queueing delay — no coordinated
// omission; the driver's own part of that delay, from the due time to the
// send, is recorded apart with the latencies from the send, see
// [Result.LagP99]). Optionally it also holds extra sessions' GET event streams open
// for the whole run to show what idle connections cost the server.
//
// Latencies go into an HDR histogram (1µs..60s, 3 significant digits). A
// [Result] prints as a table ([Result.WriteTable], [WriteRows]), marshals to
// JSON with durations in milliseconds ([WriteJSON]), and a sweep of results
// draws as a PNG of latency percentiles against offered load ([Chart]) or, for
// a side-by-side comparison of targets, as latency by percentile
// ([CompareChart]).
package bench
