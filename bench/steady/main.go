// Command steady runs mcpstream at a steady load for a while and reports
// the resident memory (RSS) of its processes over time: where it levels
// off, and what each process holds per 1,000 calls/s.
//
// By default it starts one `mcpstream dev` (embedded NATS, a gateway and
// the demo workers in one process) and drives echo from --sessions
// closed-loop sessions (or, with --rate, an open loop) for --duration,
// sampling the process's RSS every --interval. With --split it starts the
// three tiers apart: a NATS node (`mcpstream dev --examples 0`, its
// embedded server exposed over TCP, its own gateway idle), a worker and a
// gateway, and samples each; the memory a tier holds per 1,000 calls/s is
// its plateau (the median of the last third of the samples) less its RSS
// before the load, over the rate in thousands.
//
// Every process gets --gc-percent and --memory-limit when given (default
// their own: GOGC 400, and the memory limit each command chooses, which
// it prints). Each sample line carries the machine's load average, since
// the figures mean little without it.
//
//	go run ./bench/steady --sessions 32 --duration 10m
//	go run ./bench/steady --split --rate 4000 --duration 3m --json steady.json
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
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func main() {
	os.Exit(steady(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	cfg         bench.Config
	split       bool
	interval    time.Duration
	gcPercent   int
	memoryLimit string
	jsonPath    string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("steady", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.IntVar(&o.cfg.Sessions, "sessions", 32, "MCP sessions making calls (closed loop: one call at a time each)")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "open-loop rate in calls/s (0: closed loop)")
	fs.DurationVar(&o.cfg.Duration, "duration", 10*time.Minute, "how long the load runs")
	fs.StringVar(&o.cfg.Tool, "tool", "echo", "tool to call")
	toolArgs := fs.String("args", `{"text":"hello"}`, "tool arguments, a JSON object")
	fs.BoolVar(&o.split, "split", false, "run a NATS node, a worker and a gateway as three processes, and sample each")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "sampling interval")
	fs.IntVar(&o.gcPercent, "gc-percent", -1, "every process's --gc-percent (default its own: 400 unless GOGC is set)")
	fs.StringVar(&o.memoryLimit, "memory-limit", "", "every process's --memory-limit (default its own; off for none)")
	fs.StringVar(&o.jsonPath, "json", "", "write the samples and the summary as JSON to this file")
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
	if o.interval <= 0 || o.cfg.Duration < 3*o.interval {
		return nil, errors.New("--duration must hold at least three --interval")
	}
	if o.cfg.Rate < 0 || o.cfg.Sessions < 1 {
		return nil, errors.New("--rate must not be negative, --sessions positive")
	}
	o.cfg.Timeout = 30 * time.Second
	return o, nil
}

func steady(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "steady: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o, stderr)
	if rep != nil {
		rep.Command = append([]string{"go run ./bench/steady"}, args...)
		rep.write(stdout)
		if err == nil && o.jsonPath != "" {
			err = bench.WriteFile(o.jsonPath, func(w io.Writer) error {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "steady: %v\n", err)
		return 1
	}
	return 0
}

// tier is one process sampled.
type tier struct {
	name string
	p    *proc.Proc
}

// serverFlags are the flags every process gets from the harness.
func (o *options) serverFlags() []string {
	f := []string{"--log-level", "warn"}
	if o.gcPercent >= 0 {
		f = append(f, "--gc-percent", fmt.Sprint(o.gcPercent))
	}
	if o.memoryLimit != "" {
		f = append(f, "--memory-limit", o.memoryLimit)
	}
	return f
}

var (
	endpointLine = regexp.MustCompile(`MCP endpoint (http://\S+)`)
	natsLine     = regexp.MustCompile(`NATS listening on (\S+)`)
	workerLine   = regexp.MustCompile(`worker group (\S+) serving`)
	limitLine    = regexp.MustCompile(`Go memory limit (\S+ \(.*\))`)
)

// run starts the processes, samples them before the load, drives the load
// while sampling, and returns the report (with what it has on an error).
func run(ctx context.Context, o *options, stderr io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "mcpstream-steady-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := proc.BuildMcpstream(ctx, dir)
	if err != nil {
		return nil, err
	}
	var tiers []tier
	defer func() {
		for _, t := range slices.Backward(tiers) {
			if err := t.p.Stop(40 * time.Second); err != nil {
				fmt.Fprintf(stderr, "stopping %s: %v\n%s\n", t.name, err, t.p.StderrTail())
			}
		}
	}()
	start := func(name string, ready *regexp.Regexp, args ...string) (*proc.Proc, error) {
		p, err := proc.Start(ctx, append(append([]string{bin}, args...), o.serverFlags()...), ready)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		tiers = append(tiers, tier{name, p})
		return p, nil
	}
	var front *proc.Proc
	if !o.split {
		if front, err = start("dev", endpointLine, "dev", "--addr", "127.0.0.1:0", "--data", dir+"/js"); err != nil {
			return nil, err
		}
	} else {
		node, err := start("nats", endpointLine, "dev", "--examples", "0", "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--data", dir+"/js")
		if err != nil {
			return nil, err
		}
		url := node.StdoutMatch(natsLine)
		if url == "" {
			return nil, errors.New("the NATS node printed no NATS URL")
		}
		if _, err := start("worker", workerLine, "worker", "--nats", url, "--examples", "demo"); err != nil {
			return nil, err
		}
		if front, err = start("gateway", endpointLine, "gateway", "--nats", url, "--addr", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	if err := front.WaitInitialize(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	rep := &report{Interval: o.interval.Seconds(), Sessions: o.cfg.Sessions, Rate: o.cfg.Rate, Tool: o.cfg.Tool,
		GCPercent: o.gcPercent, Environment: currentEnvironment()}
	for _, t := range tiers {
		rep.Tiers = append(rep.Tiers, tierInfo{Name: t.name, PID: t.p.PID(), MemoryLimit: t.p.StdoutMatch(limitLine)})
	}
	// Before the load: the processes settled for a few samples.
	for range 3 {
		rep.Before = sample(tiers, time.Time{})
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return rep, ctx.Err()
		}
	}
	cpu0 := cpus(tiers)
	cfg := o.cfg
	cfg.URL, cfg.Label = front.Endpoint(), "mcpstream"
	if !o.split {
		cfg.ServerPID = front.PID()
	}
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var res *bench.Result
	var runErr error
	var began atomic.Int64 // when the first call went out, unix ns
	began.Store(time.Now().UnixNano())
	cfg.Started = func() { began.Store(time.Now().UnixNano()) }
	go func() {
		defer close(done)
		res, runErr = bench.Run(loadCtx, cfg)
	}()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			s := sample(tiers, time.Unix(0, began.Load()))
			rep.Samples = append(rep.Samples, s)
			fmt.Fprintln(stderr, s.line(rep.Tiers))
		case <-done:
			running = false
		case <-ctx.Done():
			cancel()
			<-done
			return rep, ctx.Err()
		}
	}
	if runErr != nil {
		return rep, runErr
	}
	rep.finish(res, cpus(tiers), cpu0)
	return rep, nil
}

// cpus is each tier's CPU time so far.
func cpus(tiers []tier) []time.Duration {
	out := make([]time.Duration, len(tiers))
	for i, t := range tiers {
		out[i] = bench.PIDCPU(t.p.PID())
	}
	return out
}

// sample reads every tier's RSS and the machine's load average.
func sample(tiers []tier, began time.Time) point {
	s := point{RSS: make([]int64, len(tiers)), Load: proc.LoadAverage()}
	if !began.IsZero() {
		s.At = time.Since(began).Seconds()
	}
	for i, t := range tiers {
		s.RSS[i], _ = proc.RSS(t.p.PID())
	}
	return s
}
