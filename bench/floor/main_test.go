package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// TestRPCHandler: the HTTP floor's handler, on real loopback HTTP, serves
// the load driver's sessions and calls with no error.
func TestRPCHandler(t *testing.T) {
	srv := httptest.NewServer(rpcHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{URL: srv.URL, Sessions: 2, Duration: 300 * time.Millisecond,
		Tool: "echo", Args: json.RawMessage(`{"text":"hello"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.ErrorCount() != 0 {
		t.Errorf("%d ok, errors %v", res.OK, res.Errors)
	}
}

// TestJetStreamRoundTrips: the JetStream floor's message pattern, on an
// embedded server on disk, answers every call and measures its CPU.
func TestJetStreamRoundTrips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := jsRoundTrips(ctx, t.TempDir(), 4, 100*time.Millisecond, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls == 0 || res.Throughput() <= 0 {
		t.Errorf("no round trip measured: %+v", res)
	}
}

func TestSummarize(t *testing.T) {
	r := &report{Runs: []run{
		{Round: 1, Part: partHTTP, CPUPerCallUs: 40}, {Round: 1, Part: partJetStream, CPUPerCallUs: 40}, {Round: 1, Part: partMcpstream, CPUPerCallUs: 120},
		{Round: 2, Part: partMcpstream, CPUPerCallUs: 100}, {Round: 2, Part: partJetStream, CPUPerCallUs: 30}, {Round: 2, Part: partHTTP, CPUPerCallUs: 50},
	}}
	r.summarize()
	if r.FloorUs != 80 || r.McpstreamUs != 110 || len(r.Ratios) != 2 || r.Ratios[0] != 1.5 || r.Ratios[1] != 1.25 || r.Ratio != 1.375 {
		t.Errorf("summary: floor %v, mcpstream %v, ratios %v, ratio %v", r.FloorUs, r.McpstreamUs, r.Ratios, r.Ratio)
	}
}
