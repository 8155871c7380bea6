// Command compare runs the same MCP workload against mcpstream
// (`mcpstream dev`: embedded JetStream on file storage, one replica,
// gateway and demo workers in one process), a plain mark3labs/mcp-go
// Streamable HTTP server and a plain official go-sdk Streamable HTTP
// server, each an `echo` tool in its own process on a free loopback port,
// one at a time, and prints their throughput, latency and CPU a call side
// by side.
//
//	go run ./bench/compare --sessions 64 --duration 10s --warmup 2s
//
// Go's GC target weighs on every server's figures, and the servers do not
// ship with the same one: the mcpstream binary sets GOGC=400 for itself,
// the plain servers keep Go's default of 100. So compare runs two settings
// (--settings): "shipped", each server at its shipped GC target, and
// "same", every server at --gogc (default 400). Each server process gets
// its GC target explicitly, as GOGC in its environment; the plain servers
// report the target their runtime took, and a run whose server reports
// another one fails.
//
// The runs are interleaved: each of --rounds rounds runs every server
// under every setting in turn (a server already run at the same GC target
// in the round is not run again; every other round goes in reverse order),
// so that the machine's drift falls on every server alike. The tables give
// each figure's median and range over the rounds, and the ratio of
// mcpstream's throughput and CPU a call to each server's, taken within
// each round, with its median and range. With the defaults (3 rounds, 5
// runs a round of 2 s warm-up and 10 s measured) a run of the harness takes
// a little over three minutes (3m04s on the project's 2-core machine),
// against some 40 s for the single round of one setting before.
//
// The workload is a tool (--tool, --args): echo, read-only
// (readOnlyHint), mcpstream's cheapest path; or increment, neither
// read-only nor idempotent, which every target serves too (it adds to a
// counter), and for which mcpstream's worker claims the call and stores
// its result in the result bucket:
//
//	go run ./bench/compare --tool increment --args '{}' --settings same
//
// Beside the figures it says what they measure: which tool's path it is,
// and which response type each
// server chose for a call (the driver accepts application/json and
// text/event-stream, as clients do). --json writes the settings, every run
// and the summary; --chart draws a panel per setting.
//
// It builds the mcpstream binary into a temp dir; the two plain servers are
// this program itself, re-executed as `compare serve-mcpgo --addr ...` or
// `compare serve-gosdk --addr ...`. Each run starts a fresh server process,
// stopped with SIGINT after its run and killed if the harness goes away
// first.
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
	"strconv"
	"strings"
	"syscall"
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
	settings   []setting
	gogc       int // the common GC target of the "same" setting
	rounds     int
	jsonPath   string
	chartPath  string
	noProgress bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.IntVar(&o.cfg.Sessions, "sessions", 64, "MCP sessions making calls")
	fs.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "measured window of each run")
	fs.DurationVar(&o.cfg.Warmup, "warmup", 2*time.Second, "warm-up of each run (not counted)")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "open-loop rate in calls/s (0: closed loop)")
	fs.StringVar(&o.cfg.Tool, "tool", "echo", "tool to call")
	toolArgs := fs.String("args", `{"text":"hello"}`, "tool arguments, a JSON object")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 30*time.Second, "deadline of one call")
	targets := fs.String("targets", strings.Join(targetNames(), ","), "comma-separated targets to run, in order")
	settings := fs.String("settings", strings.Join(settingNames, ","),
		"comma-separated GC settings: shipped (each server at its own default: mcpstream 400, the others Go's 100), same (every server at --gogc)")
	fs.IntVar(&o.gogc, "gogc", mcpstreamGOGC, "GC target (GOGC) of every server in the \"same\" setting")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds, each running every target under every setting once")
	fs.StringVar(&o.jsonPath, "json", "", "write the runs and their summary as JSON to this file")
	fs.StringVar(&o.chartPath, "chart", "", "draw latency by percentile of every target under every setting to this PNG file")
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
	if o.rounds < 1 {
		return nil, fmt.Errorf("--rounds must be at least 1, not %d", o.rounds)
	}
	if o.gogc < 1 {
		return nil, fmt.Errorf("--gogc must be a positive percentage, not %d", o.gogc)
	}
	for _, t := range splitList(*targets) {
		if findTarget(t) == nil {
			return nil, fmt.Errorf("--targets: unknown target %q (have %s)", t, strings.Join(targetNames(), ", "))
		}
		o.targets = append(o.targets, t)
	}
	if len(o.targets) == 0 {
		return nil, errors.New("--targets: none given")
	}
	for _, name := range splitList(*settings) {
		s, err := newSetting(name, o.targets, o.gogc)
		if err != nil {
			return nil, fmt.Errorf("--settings: %w", err)
		}
		for _, have := range o.settings {
			if have.name == name {
				return nil, fmt.Errorf("--settings: %s given twice", name)
			}
		}
		o.settings = append(o.settings, s)
	}
	if len(o.settings) == 0 {
		return nil, errors.New("--settings: none given")
	}
	return o, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var items []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	return items
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
	rep := newReport(o)
	err = runAll(ctx, o, rep, stderr)
	rep.finish()
	fmt.Fprintf(stderr, "compare: %d runs in %s\n", len(rep.Runs), rep.Finished.Sub(rep.Started).Round(time.Second))
	if len(rep.Runs) > 0 {
		writeSummary(stdout, rep)
	}
	if err == nil && o.jsonPath != "" {
		err = bench.WriteFile(o.jsonPath, rep.writeJSON)
	}
	if err == nil && o.chartPath != "" {
		if err = writeChart(o.chartPath, rep); err == nil {
			fmt.Fprintf(stderr, "compare: chart written to %s\n", o.chartPath)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 1
	}
	return 0
}

// runAll runs the rounds, appending each run to rep as it completes. It
// stops at the first run that fails or is cut short.
func runAll(ctx context.Context, o *options, rep *report, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "mcpstream-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildBinary(ctx, o.targets, dir)
	if err != nil {
		return err
	}
	for r := 1; r <= o.rounds; r++ {
		keys := roundOrder(o.settings, o.targets, r)
		for i, k := range keys {
			fmt.Fprintf(stderr, "compare: round %d/%d, run %d/%d: %s\n", r, o.rounds, i+1, len(keys), k)
			rn, err := runOne(ctx, o, bin, k, stderr)
			if err != nil { // a run cut short is not reported as if complete
				return fmt.Errorf("round %d, %s: %w", r, k, err)
			}
			rn.Round = r
			rep.Runs = append(rep.Runs, rn)
		}
	}
	return nil
}

// runOne starts target k.target with GOGC=k.gogc in its environment, checks
// the GC target it reports (if it reports one), finds which response type
// it answers a call with, drives the workload at it and stops it.
func runOne(ctx context.Context, o *options, bin string, k runKey, stderr io.Writer) (*run, error) {
	t := findTarget(k.target)
	rn := &run{Target: k.target, GOGC: k.gogc}
	env := serverEnv(os.Environ(), k.gogc)
	err := proc.ServeEnv(ctx, t.command(bin), env, t.ready, stderr, func(p *proc.Proc) (err error) {
		if rn.ReportedGOGC, err = reportedGOGC(p.Groups); err != nil {
			return err
		}
		if rn.ReportedGOGC != nil && *rn.ReportedGOGC != k.gogc {
			return fmt.Errorf("started with GOGC=%d in its environment, the server runs at GOGC=%s", k.gogc, formatGOGC(*rn.ReportedGOGC))
		}
		pctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
		rn.Response, err = bench.ProbeCall(pctx, p.Endpoint(), o.cfg.Tool, o.cfg.Args)
		cancel()
		if err != nil {
			return fmt.Errorf("a first call: %w", err)
		}
		cfg := o.cfg
		cfg.Label, cfg.URL, cfg.ServerPID = k.target, p.Endpoint(), p.PID()
		if !o.noProgress {
			cfg.Progress = stderr
		}
		rn.Result, err = bench.Run(ctx, cfg)
		return err
	})
	return rn, err
}

// reportedGOGC is the GC target in a ready line's second group, if it has
// one: a percentage or "off" (-1).
func reportedGOGC(groups []string) (*int, error) {
	if len(groups) < 2 {
		return nil, nil
	}
	v := -1
	if groups[1] != "off" {
		var err error
		if v, err = strconv.Atoi(groups[1]); err != nil {
			return nil, fmt.Errorf("ready line: GC target %q is not a number", groups[1])
		}
	}
	return &v, nil
}

// environment is where and how the harness ran.
type environment struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	// DriverGOGC is the load driver's own GC target (this process).
	DriverGOGC int `json:"driver_gogc"`
}

func currentEnvironment() environment {
	return environment{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, DriverGOGC: gcPercent()}
}
