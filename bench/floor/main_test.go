package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestRPCHandler: the HTTP floor's handler, on real loopback HTTP, serves
// the load driver's sessions and calls with no error.
func TestRPCHandler(t *testing.T) {
	srv := httptest.NewServer(rpcHandler(nil))
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
	res, err := jsRoundTrips(ctx, t.TempDir(), 4, 0, 100*time.Millisecond, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls == 0 || res.Throughput() <= 0 {
		t.Errorf("no round trip measured: %+v", res)
	}
	// Paced well below what it does unpaced, it does the rate asked.
	rate := min(500, res.Throughput()/4)
	paced, err := jsRoundTrips(ctx, t.TempDir(), 4, rate, 100*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := paced.Throughput(); got < 0.9*rate || got > 1.1*rate {
		t.Errorf("paced at %.0f calls/s: %.0f calls/s", rate, got)
	}
}

// TestJoined: the joined part, on real loopback HTTP, answers every call
// of the load driver through its pipeline: the stream acknowledged a
// stored request for each call answered, and refused none; and so does the
// joined-core part, through core NATS, with no stream.
func TestJoined(t *testing.T) {
	for _, core := range []bool{false, true} {
		t.Run(map[bool]string{false: "stored", true: "core"}[core], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			j, err := startJoined(ctx, t.TempDir(), core)
			if err != nil {
				t.Fatal(err)
			}
			defer j.close()
			srv := httptest.NewServer(rpcHandler(j.call))
			defer srv.Close()
			res, err := bench.Run(ctx, bench.Config{URL: srv.URL, Sessions: 2, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
				Tool: "echo", Args: json.RawMessage(`{"text":"hello"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK == 0 || res.ErrorCount() != 0 {
				t.Errorf("%d ok, errors %v", res.OK, res.Errors)
			}
			if published := j.seq.Load(); published < uint64(res.OK) {
				t.Errorf("%d calls answered but %d published", res.OK, published)
			}
			if core {
				if j.p != nil {
					t.Error("the core form has a stream")
				}
				return
			}
			if err := j.refusals(); err != nil {
				t.Error(err)
			}
			// Every publish is acknowledged (the last few may still be on their way).
			testkit.Eventually(t, "every publish acknowledged", 5*time.Second, func() bool { return uint64(j.p.acked.Load()) == j.seq.Load() })
		})
	}
}

// TestParts: --parts runs what it names, and refuses what is no part or
// is named twice.
func TestParts(t *testing.T) {
	o, err := parseFlags([]string{"--parts", "joined-core,mcp-go"}, io.Discard)
	if err != nil || !slices.Equal(o.parts, []string{partCore, partMCPGo}) {
		t.Errorf("parts %v, %v", o.parts, err)
	}
	if o, _ := parseFlags(nil, io.Discard); !slices.Equal(o.parts, defaultParts) {
		t.Errorf("default parts %v", o.parts)
	}
	for _, bad := range []string{"http,http", "nats", ""} {
		if _, err := parseFlags([]string{"--parts", bad}, io.Discard); err == nil {
			t.Errorf("--parts %q accepted", bad)
		}
	}
	if _, err := parseFlags([]string{"--parts", "http,mcpstream", "--profile-joined", "/tmp/j.pprof"}, io.Discard); err == nil {
		t.Error("--profile-joined without the joined part accepted")
	}
	if _, err := parseFlags([]string{"--parts", "joined,mcpstream", "--profile-joined", "/tmp/j.pprof"}, io.Discard); err != nil {
		t.Errorf("--profile-joined with the joined part: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	r := &report{Runs: []run{
		{Round: 1, Part: partHTTP, CPUPerCallUs: 40}, {Round: 1, Part: partJetStream, CPUPerCallUs: 40}, {Round: 1, Part: partJoined, CPUPerCallUs: 100}, {Round: 1, Part: partMcpstream, CPUPerCallUs: 120},
		{Round: 2, Part: partMcpstream, CPUPerCallUs: 100}, {Round: 2, Part: partJoined, CPUPerCallUs: 80}, {Round: 2, Part: partJetStream, CPUPerCallUs: 30}, {Round: 2, Part: partHTTP, CPUPerCallUs: 50},
	}}
	r.summarize()
	if r.FloorUs != 80 || r.McpstreamUs != 110 || len(r.Ratios) != 2 || r.Ratios[0] != 1.5 || r.Ratios[1] != 1.25 || r.Ratio != 1.375 {
		t.Errorf("summary: floor %v, mcpstream %v, ratios %v, ratio %v", r.FloorUs, r.McpstreamUs, r.Ratios, r.Ratio)
	}
	// joined over the floor: 1.25 and 1.0; mcpstream over joined: 1.2 and 1.25.
	if r.JoinedUs != 90 || r.JoinedRatio != 1.125 || r.OverJoined != 1.225 {
		t.Errorf("joined %v us, %vx the floor, mcpstream %vx joined; want 90, 1.125, 1.225", r.JoinedUs, r.JoinedRatio, r.OverJoined)
	}
	if len(r.Parts) != 4 || r.Parts[2] != (partMedians{Part: partJoined, CPUPerCallUs: 90}) || len(r.Against) != 0 {
		t.Errorf("parts %+v, against %+v", r.Parts, r.Against)
	}
}

// TestSummarizeAgainst: each part's throughput over an in-process
// server's is the median of the rounds' ratios.
func TestSummarizeAgainst(t *testing.T) {
	r := &report{Runs: []run{
		{Round: 1, Part: partMCPGo, Throughput: 20000}, {Round: 1, Part: partMcpstream, Throughput: 10000}, {Round: 1, Part: partCore, Throughput: 16000},
		{Round: 2, Part: partCore, Throughput: 14000}, {Round: 2, Part: partMcpstream, Throughput: 12000}, {Round: 2, Part: partMCPGo, Throughput: 20000},
		{Round: 3, Part: partMcpstream, Throughput: 9000}, {Round: 3, Part: partMCPGo, Throughput: 10000},
	}}
	r.summarize()
	want := []against{{Part: partMcpstream, Server: partMCPGo, Ratio: 0.6}, {Part: partCore, Server: partMCPGo, Ratio: 0.75}}
	if !slices.Equal(r.Against, want) {
		t.Errorf("against %+v, want %+v", r.Against, want)
	}
	if len(r.Parts) != 3 || r.Parts[0].Part != partMCPGo || r.Parts[1] != (partMedians{Part: partMcpstream, Throughput: 10000}) {
		t.Errorf("parts %+v", r.Parts)
	}
	var out strings.Builder
	r.write(&out)
	if !strings.Contains(out.String(), "throughput against mcp-go (medians of the rounds' ratios): mcpstream 0.60x, joined-core 0.75x") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestSummarizeBaseline: with a baseline part, mcpstream over it is given
// per round, with its median and the rounds in which mcpstream was lower.
func TestSummarizeBaseline(t *testing.T) {
	r := &report{Runs: []run{
		{Round: 1, Part: partJoined, CPUPerCallUs: 60}, {Round: 1, Part: partMcpstream, CPUPerCallUs: 72}, {Round: 1, Part: partBaseline, CPUPerCallUs: 80},
		{Round: 2, Part: partBaseline, CPUPerCallUs: 75}, {Round: 2, Part: partMcpstream, CPUPerCallUs: 90}, {Round: 2, Part: partJoined, CPUPerCallUs: 70},
		{Round: 3, Part: partJoined, CPUPerCallUs: 65}, {Round: 3, Part: partMcpstream, CPUPerCallUs: 76}, {Round: 3, Part: partBaseline, CPUPerCallUs: 95},
	}}
	r.summarize()
	if want := []float64{0.9, 1.2, 0.8}; !slices.Equal(r.OverBaselineRounds, want) || r.OverBaseline != 0.9 || r.Lower != 2 || r.BaselineUs != 80 {
		t.Errorf("over the baseline %v (median %v), lower in %d, baseline %v us; want %v, 0.9, 2, 80", r.OverBaselineRounds, r.OverBaseline, r.Lower, r.BaselineUs, want)
	}
	var out strings.Builder
	r.write(&out)
	if !strings.Contains(out.String(), "mcpstream over the baseline: 0.900 (rounds: 0.900, 1.200, 0.800), lower in 2 of 3 rounds") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestRunJetStream: the jetstream part's own process (its run-jetstream
// mode) prints what it measured, which jsRoundTripsIn reads back.
func TestRunJetStream(t *testing.T) {
	var out, errs bytes.Buffer
	code := runJetStream([]string{"--data", t.TempDir(), "--sessions", "2", "--warmup", "50ms", "--duration", "300ms"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var r jsRun
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if r.Calls == 0 || r.WindowNs < int64(300*time.Millisecond) || r.CPUNs <= 0 {
		t.Errorf("nothing measured: %+v", r)
	}
	if code := runJetStream([]string{"--sessions", "2"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("without --data: exit %d, want 2", code)
	}
}

// TestPinned: with --server-cpus, a server's command runs under taskset
// on those CPUs; without it, as it is.
// TestMcpstreamBinary: --mcpstream and --baseline take an executable
// file, and refuse anything else before a run starts.
func TestMcpstreamBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if o, err := parseFlags([]string{"--mcpstream", exe}, io.Discard); err != nil || o.mcpstream != exe {
		t.Fatalf("--mcpstream %s: %+v, %v", exe, o, err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{plain, filepath.Dir(plain), filepath.Join(filepath.Dir(plain), "missing")} {
		for _, flag := range []string{"--mcpstream", "--baseline"} {
			if _, err := parseFlags([]string{flag, bad}, io.Discard); err == nil {
				t.Errorf("%s %s accepted", flag, bad)
			}
		}
	}
	// The baseline part runs right after the mcpstream part; without it,
	// there is nothing to compare.
	o, err := parseFlags([]string{"--baseline", exe, "--parts", "joined,mcpstream,http"}, io.Discard)
	if err != nil || o.baseline != exe || !slices.Equal(o.parts, []string{partJoined, partMcpstream, partBaseline, partHTTP}) {
		t.Errorf("--baseline: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"--baseline", exe, "--parts", "joined"}, io.Discard); err == nil {
		t.Error("--baseline without the mcpstream part accepted")
	}
}

func TestPinned(t *testing.T) {
	o, err := parseFlags([]string{"--server-cpus", "1", "--driver-cpus", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.pinned("/bin/dev", "dev"); !slices.Equal(got, []string{"taskset", "-c", "1", "/bin/dev", "dev"}) {
		t.Errorf("pinned: %q", got)
	}
	o, _ = parseFlags(nil, io.Discard)
	if got := o.pinned("/bin/dev", "dev"); !slices.Equal(got, []string{"/bin/dev", "dev"}) {
		t.Errorf("not pinned: %q", got)
	}
}
