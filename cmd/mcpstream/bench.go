package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// runBench drives load at an MCP endpoint: one run, or a sweep of open-loop
// rates, printing a table per run (and a summary of a sweep) to stdout.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/mcp", "Streamable HTTP MCP endpoint")
	sessions := fs.Int("sessions", 64, "MCP sessions making calls")
	duration := fs.Duration("duration", 10*time.Second, "measured window of each run")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before each measured window (not counted)")
	rate := fs.Float64("rate", 0, "open-loop arrival rate in calls/s (0: closed loop, one call at a time per session)")
	rates := fs.String("rates", "", `comma-separated open-loop rates to sweep, e.g. "1000,2000,4000"`)
	idle := fs.Int("idle-streams", 0, "extra sessions that only hold a GET event stream open")
	sourceIPs := fs.Int("source-ips", 1, "spread connections over source addresses 127.0.0.1..127.0.0.N (for >20k sockets)")
	tool := fs.String("tool", "echo", "tool to call")
	toolArgs := fs.String("args", `{"text":"hello"}`, "tool arguments, a JSON object")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of one call")
	maxOut := fs.Int("max-outstanding", 0, "open loop: calls in flight at most; more arrivals count as driver-overflow (default 10000)")
	conns := fs.Int("conns", 0, "open loop: HTTP connections the calls share; a call due while all are busy waits, counted in its latency (default 1024)")
	jsonPath := fs.String("json", "", "write the results as JSON to this file")
	chartPath := fs.String("chart", "", "draw latency percentiles against offered load to this PNG file")
	noProgress := fs.Bool("no-progress", false, "draw no progress bar")
	serverPID := fs.Int("server-pid", 0, "report this local process's CPU time over each window (Linux): the server's cost of a call")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !json.Valid([]byte(*toolArgs)) {
		return fmt.Errorf("--args is not JSON: %s", *toolArgs)
	}
	sweep, err := parseRates(*rates)
	if err != nil {
		return err
	}
	if len(sweep) > 0 && *rate != 0 {
		return errors.New("give --rate or --rates, not both")
	}
	if len(sweep) == 0 {
		sweep = []float64{*rate}
	}
	base := bench.Config{
		URL: *url, Sessions: *sessions, Warmup: *warmup, Duration: *duration,
		IdleStreams: *idle, Tool: *tool, Args: json.RawMessage(*toolArgs), Timeout: *timeout,
		MaxOutstanding: *maxOut, Conns: *conns, SourceIPs: *sourceIPs, ServerPID: *serverPID,
	}
	if !*noProgress {
		base.Progress = stderr
	}
	var results []*bench.Result
	for i, r := range sweep {
		cfg := base
		cfg.Rate = r
		if len(sweep) > 1 {
			fmt.Fprintf(stderr, "run %d/%d: %s calls/s\n", i+1, len(sweep), strconv.FormatFloat(r, 'f', -1, 64))
		}
		res, err := bench.Run(ctx, cfg)
		if res != nil {
			results = append(results, res)
			res.WriteTable(stdout)
			fmt.Fprintln(stdout)
		}
		if err != nil {
			return err
		}
	}
	if len(results) > 1 {
		bench.WriteRows(stdout, results)
	}
	if *jsonPath != "" {
		if err := bench.WriteFile(*jsonPath, func(w io.Writer) error { return bench.WriteJSON(w, results) }); err != nil {
			return err
		}
	}
	if *chartPath != "" {
		if err := bench.Chart(*chartPath, results); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "chart written to %s\n", *chartPath)
	}
	return nil
}

// parseRates parses a comma-separated list of positive rates.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
