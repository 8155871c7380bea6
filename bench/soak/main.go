// Command soak runs `mcpstream dev` for a long while at a fraction of its
// capacity, with clients coming and going, and checks that the server's
// resources stay bounded.
//
// It starts a real `mcpstream dev` (its embedded NATS exposed, its
// Prometheus metrics on), measures the closed-loop capacity of a tool
// (default echo; 64 sessions, 10 s), then drives an open loop at
// --fraction of it (default half) for --duration (default 10m). The calls
// are spread over --clients clients that each hold one session at a time:
// a session makes a random number of calls (1..--max-calls), then ends
// with an HTTP DELETE and its client opens a new one; a share of sessions
// (--stream-share) also hold their GET event stream open for a while
// (up to --stream-hold), and a share of clients (--abrupt) leave
// abruptly: they close their last call's connection mid-call and never
// send DELETE.
//
// Every --interval it samples the server process: RSS, open files (from
// /proc), goroutines and heap (from its /metrics), the bytes and messages
// of every JetStream stream and KV bucket, and the load: calls by outcome,
// successful calls/s and p99. At the end it prints the samples, writes
// them as JSON (--json) and charts over time (--charts PREFIX: PREFIX-rss.png,
// -goroutines.png, -files.png, -streams.png, -cpu.png, -load.png), and
// judges them:
// RSS and goroutines must not grow from the middle third of the run to the
// last by more than --tolerance (or an absolute margin), open files not
// beyond a margin (goroutines and open files, which follow the
// connections and calls open and so jump whenever the server falls
// behind, on the samples at which it kept up, by their lower quartile),
// and streams and buckets must stay within their limits (a
// bucket that refuses writes when full must not be on course to fill
// before its MaxAge frees room); once the load is over and every client
// gone, goroutines and open files must be back near where they were
// before it. It exits 1 if a series grew, naming it, or if any call went
// unanswered (lost), and reports refused and failed calls.
//
//	go run ./bench/soak                      # 10 minutes at half of capacity
//	go run ./bench/soak --duration 1m --json soak.json --charts /tmp/soak
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(soak(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	tool, args, examples string
	fraction, rate       float64
	capSessions          int
	capDuration          time.Duration
	duration, interval   time.Duration
	clients, maxCalls    int
	parallel, queue      int
	streamShare          float64
	streamHold           time.Duration
	abrupt               float64
	cutWithin            time.Duration
	timeout              time.Duration
	tolerance            float64
	gcPercent            int
	maxBytes             int64
	jsonPath, charts     string
	profileDir           string
	seed                 uint64
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.tool, "tool", "echo", "the tool to call")
	fs.StringVar(&o.args, "args", `{"text":"hello"}`, "the tool's arguments, a JSON object")
	fs.StringVar(&o.examples, "examples", "demo", "example worker groups dev runs (see mcpstream dev --help)")
	fs.Float64Var(&o.fraction, "fraction", 0.5, "open-loop rate as a fraction of the measured closed-loop capacity")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop rate in calls/s (skips the capacity run)")
	fs.IntVar(&o.capSessions, "capacity-sessions", 64, "sessions of the closed loop that measures capacity")
	fs.DurationVar(&o.capDuration, "capacity-duration", 10*time.Second, "measured window of the capacity run")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the open loop runs")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "sampling interval")
	fs.IntVar(&o.clients, "clients", 200, "clients, each holding one session at a time")
	fs.IntVar(&o.maxCalls, "max-calls", 200, "a session makes 1..N calls (uniform), then ends")
	fs.IntVar(&o.parallel, "parallel", 4, "calls one session has in flight at most")
	fs.IntVar(&o.queue, "queue", 512, "calls due on one client that may wait in the driver; beyond, a call is counted as overflow")
	fs.Float64Var(&o.streamShare, "stream-share", 0.25, "share of sessions that also hold their GET event stream")
	fs.DurationVar(&o.streamHold, "stream-hold", time.Minute, "a held GET stream stays open up to this long (uniform), or until its session ends")
	fs.Float64Var(&o.abrupt, "abrupt", 0.05, "share of clients that leave abruptly: the connection of their last call closed mid-call, no DELETE")
	fs.DurationVar(&o.cutWithin, "cut-within", 2*time.Millisecond, "an abrupt client closes its last call's connection within this time of sending it (uniform)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "a call, initialize, DELETE or stream opening without an answer within this is lost")
	fs.Float64Var(&o.tolerance, "tolerance", 0.15, "growth of RSS and goroutines allowed from the middle third of the run to the last (besides absolute margins)")
	fs.IntVar(&o.gcPercent, "gc-percent", -1, "the server's --gc-percent (default: its own, 400 unless GOGC is set)")
	fs.Int64Var(&o.maxBytes, "max-bytes", 0, "provision dev's request streams (and result bucket) anew with this byte limit each, so that a run reaches it (default: dev's, 256 MiB)")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file")
	fs.StringVar(&o.charts, "charts", "", "draw PNG charts to PREFIX-rss.png, -goroutines.png, -files.png, -streams.png, -cpu.png and -load.png")
	fs.StringVar(&o.profileDir, "profile-dir", "", "save the server's heap and goroutine profiles here when the last third starts and at the end")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the clients' random choices")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch {
	case o.rate < 0 || o.fraction <= 0 || o.fraction > 1:
		return nil, errors.New("--rate must be positive and --fraction in (0, 1]")
	case o.interval <= 0 || o.duration < minSamples*o.interval:
		return nil, fmt.Errorf("--duration must hold at least %d --interval", minSamples)
	case o.clients <= 0 || o.maxCalls <= 0 || o.parallel <= 0 || o.queue <= 0:
		return nil, errors.New("--clients, --max-calls, --parallel and --queue must be positive")
	case !share(o.streamShare) || !share(o.abrupt):
		return nil, errors.New("--stream-share and --abrupt must be in [0, 1]")
	case o.streamHold < 0 || o.cutWithin < 0 || o.timeout <= 0 || o.tolerance < 0 || o.maxBytes < 0:
		return nil, errors.New("--stream-hold, --cut-within, --tolerance and --max-bytes must not be negative, --timeout positive")
	}
	return o, nil
}

func share(f float64) bool { return f >= 0 && f <= 1 }

func soak(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o, stdout, stderr)
	if rep == nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	rep.Command = append([]string{"go run ./bench/soak"}, args...)
	verdicts, derr := decide(rep.Samples, rep.Rate, rep.Baseline, rep.After, defaultTolerances(o.tolerance))
	rep.Verdicts = verdicts
	rep.Bounded = derr == nil && unbounded(verdicts) == nil
	rep.writeTable(stdout)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if o.jsonPath != "" {
		if werr := rep.writeJSON(o.jsonPath); werr != nil {
			errs = append(errs, werr)
		}
	}
	if o.charts != "" && len(rep.Samples) > 0 {
		if cerr := rep.charts(o.charts); cerr != nil {
			errs = append(errs, cerr)
		}
	}
	errs = append(errs, derr, unbounded(verdicts))
	if lost := rep.Total.Calls[classLost]; lost > 0 {
		errs = append(errs, fmt.Errorf("%d calls lost (no answer): %s", lost, fmtCounts(rep.Total.Kinds, lostKinds)))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "\nbounded: every series within its tolerance and limits; no call lost")
	return 0
}
