// Command nocliff runs the no-cliff benchmark against `mcpstream dev`: it
// measures the closed-loop capacity (64 sessions, one call at a time each),
// then for each session count starts a fresh `mcpstream dev` and drives an
// open loop at a fraction of that capacity (default half), the calls
// spread over that many sessions. It prints the latency at each size and
// whether p99 stays within the target (default 20 ms).
//
//	go run ./bench/nocliff                               # driver and server share every CPU
//	taskset -c 0 go run ./bench/nocliff --server-cpus 1  # each pinned to its own CPU
//
// --server-cpus runs the server under taskset; the driver is this process,
// so pin it by running the harness under taskset as above.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func main() {
	os.Exit(nocliff(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness's flags.
type options struct {
	sizes       []int
	fraction    float64
	rate        float64 // if set, the capacity run is skipped
	capSessions int
	capDuration time.Duration
	duration    time.Duration
	warmup      time.Duration
	target      time.Duration
	serverCPUs  string
	jsonPath    string
	noProgress  bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("nocliff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	sizes := fs.String("sizes", "25,100,1000,10000", "comma-separated session counts")
	fs.Float64Var(&o.fraction, "fraction", 0.5, "open-loop rate as a fraction of the measured closed-loop capacity")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop rate in calls/s (skips the capacity run)")
	fs.IntVar(&o.capSessions, "capacity-sessions", 64, "sessions of the closed loop that measures capacity")
	fs.DurationVar(&o.capDuration, "capacity-duration", 10*time.Second, "measured window of the capacity run")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured window at each size")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up of each run (not counted)")
	fs.DurationVar(&o.target, "p99", 20*time.Millisecond, "the p99 latency each size must stay within")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "run the server under `taskset -c` with this CPU list")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.BoolVar(&o.noProgress, "no-progress", false, "draw no progress bar")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return nil, fmt.Errorf("--sizes: %w", err)
	}
	if o.rate < 0 || o.fraction <= 0 || o.fraction > 1 {
		return nil, errors.New("--rate must be positive and --fraction in (0, 1]")
	}
	return o, nil
}

// parseSizes parses a comma-separated list of positive session counts.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		return nil, errors.New("no session count given")
	}
	return sizes, nil
}

func nocliff(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "nocliff: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	capacity, results, err := run(ctx, o, stdout, stderr)
	if len(results) > 0 {
		writeTable(stdout, o, capacity, results)
	}
	if err == nil && o.jsonPath != "" {
		err = bench.WriteFile(o.jsonPath, func(w io.Writer) error { return bench.WriteJSON(w, results) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "nocliff: %v\n", err)
		return 1
	}
	return 0
}

// run measures the capacity (unless --rate is given), then each size
// against a fresh server.
func run(ctx context.Context, o *options, stdout, stderr io.Writer) (float64, []*bench.Result, error) {
	dir, err := os.MkdirTemp("", "mcpstream-nocliff-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := proc.BuildMcpstream(ctx, dir)
	if err != nil {
		return 0, nil, err
	}
	argv := []string{bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn"}
	if o.serverCPUs != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return 0, nil, fmt.Errorf("--server-cpus: %w", err)
		}
		argv = append([]string{taskset, "-c", o.serverCPUs}, argv...)
	}
	rate := o.rate
	var capacity float64
	if rate == 0 {
		res, err := runOnce(ctx, o, argv, bench.Config{Label: "capacity", Sessions: o.capSessions, Duration: o.capDuration}, stderr)
		if err != nil {
			return 0, nil, fmt.Errorf("measuring capacity: %w", err)
		}
		if res.Throughput == 0 {
			return 0, nil, errors.New("measuring capacity: no call succeeded")
		}
		capacity = res.Throughput
		rate = float64(int(capacity * o.fraction))
		fmt.Fprintf(stdout, "capacity: %.0f calls/s closed loop with %d sessions; open loop at %.0f calls/s\n", capacity, o.capSessions, rate)
	}
	var results []*bench.Result
	for _, n := range o.sizes {
		cfg := bench.Config{Label: fmt.Sprintf("%d sessions", n), Sessions: n, Rate: rate, Duration: o.duration}
		res, err := runOnce(ctx, o, argv, cfg, stderr)
		if err != nil { // a run cut short is not reported as if complete
			return capacity, results, fmt.Errorf("%d sessions: %w", n, err)
		}
		results = append(results, res)
	}
	return capacity, results, nil
}

// runOnce starts a fresh server, drives cfg at it and stops it.
func runOnce(ctx context.Context, o *options, argv []string, cfg bench.Config, stderr io.Writer) (*bench.Result, error) {
	var res *bench.Result
	err := proc.Serve(ctx, argv, regexp.MustCompile(`MCP endpoint (http://\S+)`), stderr, func(url string, pid int) (err error) {
		cfg.URL, cfg.ServerPID, cfg.Warmup, cfg.Tool = url, pid, o.warmup, "echo"
		cfg.Args = []byte(`{"text":"hello"}`)
		if !o.noProgress {
			cfg.Progress = stderr
		}
		fmt.Fprintf(stderr, "nocliff: %s against a fresh server\n", cfg.Label)
		res, err = bench.Run(ctx, cfg)
		return err
	})
	return res, err
}

// writeTable prints one row per size and whether its p99 met the target.
func writeTable(w io.Writer, o *options, capacity float64, results []*bench.Result) {
	where := fmt.Sprintf("driver and server share the %d CPUs", runtime.NumCPU())
	if o.serverCPUs != "" {
		where = fmt.Sprintf("server on CPUs %s, driver on %d CPU(s)", o.serverCPUs, runtime.NumCPU())
	}
	fmt.Fprintf(w, "\nworkload: open loop, tool echo, %s measured after %s warm-up at each size, a fresh server each; %s, %s\n\n",
		o.duration, o.warmup, runtime.Version(), where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "sessions\toffered/s\tok/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\terrors\tserver us/call\tp99 <= %s\t\n", o.target)
	for _, r := range results {
		met := "yes"
		if r.P99 > o.target || r.ErrorCount() > 0 {
			met = "no"
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Config.Sessions, r.Offered, r.Throughput,
			bench.FormatMS(r.P50), bench.FormatMS(r.P90), bench.FormatMS(r.P99), bench.FormatMS(r.P999),
			bench.FormatCounts(r.Errors), bench.FormatUS(r.ServerPerCall()), met)
	}
	_ = tw.Flush()
	if capacity > 0 {
		fmt.Fprintf(w, "\ncapacity %.0f calls/s (closed loop, %d sessions); rate %.0f%% of it\n", capacity, o.capSessions, 100*o.fraction)
	}
}
