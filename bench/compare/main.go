// Command compare runs the same MCP workload, one target at a time, against
// mcpstream (`mcpstream dev`: embedded JetStream on file storage, one
// replica, gateway and demo workers in one process), a plain
// mark3labs/mcp-go Streamable HTTP server and a plain official go-sdk
// Streamable HTTP server, each an `echo` tool in its own process on a free
// loopback port, and prints their throughput and latency side by side.
//
//	go run ./bench/compare --sessions 64 --duration 10s --warmup 2s
//
// It builds the mcpstream binary into a temp dir; the two plain servers are
// this program itself, re-executed as `compare serve-mcpgo --addr ...` or
// `compare serve-gosdk --addr ...`. Servers are stopped with SIGINT after
// their run, and killed if the harness goes away first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func main() {
	if len(os.Args) > 1 {
		if h := serverHandler(os.Args[1]); h != nil {
			os.Exit(serve(os.Args[1], h, os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(compare(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness's flags.
type options struct {
	cfg        bench.Config
	targets    []string
	jsonPath   string
	chartPath  string
	noProgress bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.IntVar(&o.cfg.Sessions, "sessions", 64, "MCP sessions making calls")
	fs.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "measured window per target")
	fs.DurationVar(&o.cfg.Warmup, "warmup", 2*time.Second, "warm-up per target (not counted)")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "open-loop rate in calls/s (0: closed loop)")
	fs.StringVar(&o.cfg.Tool, "tool", "echo", "tool to call")
	toolArgs := fs.String("args", `{"text":"hello"}`, "tool arguments, a JSON object")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 30*time.Second, "deadline of one call")
	targets := fs.String("targets", strings.Join(targetNames(), ","), "comma-separated targets to run, in order")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.chartPath, "chart", "", "draw latency by percentile of every target to this PNG file")
	fs.BoolVar(&o.noProgress, "no-progress", false, "draw no progress bar")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if !json.Valid([]byte(*toolArgs)) {
		return nil, fmt.Errorf("--args is not JSON: %s", *toolArgs)
	}
	o.cfg.Args = json.RawMessage(*toolArgs)
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if findTarget(t) == nil {
			return nil, fmt.Errorf("--targets: unknown target %q (have %s)", t, strings.Join(targetNames(), ", "))
		}
		o.targets = append(o.targets, t)
	}
	if len(o.targets) == 0 {
		return nil, errors.New("--targets: none given")
	}
	return o, nil
}

func compare(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := runAll(ctx, o, stderr)
	if len(results) > 0 {
		writeTable(stdout, o, results)
	}
	if err == nil && o.jsonPath != "" {
		err = bench.WriteFile(o.jsonPath, func(w io.Writer) error { return bench.WriteJSON(w, results) })
	}
	if err == nil && o.chartPath != "" {
		if err = bench.CompareChart(o.chartPath, results); err == nil {
			fmt.Fprintf(stderr, "compare: chart written to %s\n", o.chartPath)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 1
	}
	return 0
}

// runAll starts each target in turn, waits until it answers initialize,
// drives the workload at it and stops it.
func runAll(ctx context.Context, o *options, stderr io.Writer) ([]*bench.Result, error) {
	dir, err := os.MkdirTemp("", "mcpstream-compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var results []*bench.Result
	for _, name := range o.targets {
		t := findTarget(name)
		argv, err := t.command(ctx, dir)
		if err != nil {
			return results, fmt.Errorf("%s: %w", name, err)
		}
		res, err := runTarget(ctx, o, t, argv, stderr)
		if err != nil { // a run cut short is not reported as if complete
			return results, fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, res)
	}
	return results, nil
}

// runTarget runs the workload against one target process.
func runTarget(ctx context.Context, o *options, t *target, argv []string, stderr io.Writer) (*bench.Result, error) {
	fmt.Fprintf(stderr, "compare: starting %s\n", t.name)
	var res *bench.Result
	err := proc.Serve(ctx, argv, t.ready, stderr, func(url string, pid int) (err error) {
		cfg := o.cfg
		cfg.Label, cfg.URL, cfg.ServerPID = t.name, url, pid
		if !o.noProgress {
			cfg.Progress = stderr
		}
		fmt.Fprintf(stderr, "compare: %s ready at %s; running %s + %s warm-up with %d sessions\n",
			t.name, url, cfg.Duration, cfg.Warmup, cfg.Sessions)
		res, err = bench.Run(ctx, cfg)
		return err
	})
	return res, err
}

// writeTable prints one row per target, with the server's CPU time per
// call, and the ratio of mcpstream's throughput to each target's.
func writeTable(w io.Writer, o *options, results []*bench.Result) {
	var ref *bench.Result
	for _, r := range results {
		if r.Config.Label == "mcpstream" {
			ref = r
		}
	}
	mode := "closed loop"
	if o.cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g calls/s", o.cfg.Rate)
	}
	fmt.Fprintf(w, "\nworkload: %s, %d sessions, tool %s %s, %s measured after %s warm-up; %d CPUs, %s, load driver and server share the machine\n\n",
		mode, o.cfg.Sessions, o.cfg.Tool, o.cfg.Args, o.cfg.Duration, o.cfg.Warmup, runtime.NumCPU(), runtime.Version())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tcalls/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\terrors\tserver us/call\tmcpstream/target\t")
	for _, r := range results {
		ratio := "-"
		if ref != nil && r.Throughput > 0 {
			ratio = fmt.Sprintf("%.2fx", ref.Throughput/r.Throughput)
		}
		errs := fmt.Sprint(r.ErrorCount())
		if r.ErrorCount() > 0 {
			errs += " (" + bench.FormatCounts(r.Errors) + ")"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Config.Label, r.Throughput,
			bench.FormatMS(r.P50), bench.FormatMS(r.P90), bench.FormatMS(r.P99), bench.FormatMS(r.P999), errs,
			bench.FormatUS(r.ServerPerCall()), ratio)
	}
	_ = tw.Flush()
}
