package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
	"github.com/mcpstream/mcpstream/streams"
)

// run builds mcpstream, starts `mcpstream dev`, measures capacity (unless
// --rate is set) and soaks it. It returns the report of what it saw (nil
// if it saw nothing) and the error that cut the run short, if any.
func run(ctx context.Context, o *options, stdout, stderr io.Writer) (*Report, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir, err := os.MkdirTemp("", "mcpstream-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	params, err := bench.CallParams(o.tool, json.RawMessage(o.args))
	if err != nil {
		return nil, fmt.Errorf("--args: %w", err)
	}
	bin, err := proc.BuildMcpstream(ctx, dir)
	if err != nil {
		return nil, err
	}
	argv := []string{bin, "dev", "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--data", filepath.Join(dir, "js"), "--examples", o.examples, "--log-level", "warn"}
	if o.gcPercent >= 0 {
		argv = append(argv, "--gc-percent", strconv.Itoa(o.gcPercent))
	}
	var debugURL string
	if o.profileDir != "" {
		addr, err := proc.FreeAddr()
		if err != nil {
			return nil, err
		}
		argv = append(argv, "--debug-addr", addr)
		debugURL = "http://" + addr + "/debug/pprof/"
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &Report{Server: argv[1:], GOGC: gogc(o.gcPercent), Machine: fmt.Sprintf("%d CPUs, %s, driver and server sharing them", runtime.NumCPU(), runtime.Version()),
		Tool: o.tool, Args: json.RawMessage(o.args), Load: o.loadJSON()}
	var got bool
	err = proc.ServeEnv(ctx, argv, nil, regexp.MustCompile(`MCP endpoint (http://\S+)`), stderr, func(p *proc.Proc) error {
		got = true
		return soakServer(ctx, o, p, params, debugURL, rep, log, stdout, stderr)
	})
	if !got {
		return nil, err
	}
	return rep, err
}

// soakServer is the run against one started server.
func soakServer(ctx context.Context, o *options, p *proc.Proc, params []byte, debugURL string, rep *Report, log *slog.Logger, stdout, stderr io.Writer) error {
	url := p.Endpoint()
	natsURL := p.StdoutMatch(regexp.MustCompile(`NATS listening on (\S+)`))
	metricsURL := p.StdoutMatch(regexp.MustCompile(`metrics (http://\S+/metrics)`))
	if natsURL == "" || metricsURL == "" {
		return fmt.Errorf("dev did not print its NATS URL (%q) and metrics URL (%q)", natsURL, metricsURL)
	}
	nc, err := nats.Connect(natsURL, nats.Name("mcpstream-soak"))
	if err != nil {
		return fmt.Errorf("connecting to dev's NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	if o.maxBytes > 0 { // dev provisioned the default topology; only the limit changes
		if err := streams.Provision(ctx, js, streams.Topology{MaxBytes: o.maxBytes}); err != nil {
			return fmt.Errorf("--max-bytes: %w", err)
		}
		fmt.Fprintf(stdout, "streams provisioned anew with %s a request stream\n", fmtBytes(float64(o.maxBytes)))
	}
	if _, err := bench.ProbeCall(ctx, url, o.tool, json.RawMessage(o.args)); err != nil {
		return fmt.Errorf("a first call: %w", err)
	}
	rep.Rate = o.rate
	if rep.Rate == 0 {
		res, err := bench.Run(ctx, bench.Config{Label: "capacity", URL: url, Sessions: o.capSessions, Warmup: 2 * time.Second,
			Duration: o.capDuration, Tool: o.tool, Args: json.RawMessage(o.args), ServerPID: p.PID()})
		if err != nil {
			return fmt.Errorf("measuring capacity: %w", err)
		}
		if res.Throughput == 0 {
			return fmt.Errorf("measuring capacity: no call succeeded (%s)", bench.FormatCounts(res.Errors))
		}
		rep.Capacity, rep.Rate = res.Throughput, float64(int(res.Throughput*o.fraction))
		fmt.Fprintf(stdout, "capacity: %.0f calls/s closed loop with %d sessions (p99 %s ms); open loop at %.0f calls/s for %s\n",
			res.Throughput, o.capSessions, bench.FormatMS(res.P99), rep.Rate, o.duration)
	}
	smp := newSampler(p.PID(), metricsURL, js)
	if rep.Baseline, err = smp.sample(ctx); err != nil {
		return fmt.Errorf("first sample: %w", err)
	}
	d := newDriver(url, o.loadConfig(params, rep.Rate))
	start := time.Now()
	until := start.Add(o.duration)
	// The load stops when ctx ends or the sampler gives up; the sampler
	// takes its last sample at until, or stops with ctx.
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		rep.Samples = sampleLoop(ctx, o, smp, d, p, start, until, debugURL, log, stderr)
		if ctx.Err() == nil && time.Now().Before(until) { // the sampler gave up: the server is gone
			cancel(errors.New("the server stopped answering its samples"))
		}
	})
	d.run(lctx, start, until)
	rep.Drain = time.Since(until).Seconds()
	wg.Wait()
	rep.Total = totals(d.stats.whole())
	if err := context.Cause(lctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// After the load: every session ended and every stream closed; what
	// the server keeps once idle.
	time.Sleep(o.interval)
	if rep.After, err = smp.sample(ctx); err != nil {
		return fmt.Errorf("sample after the load: %w", err)
	}
	rep.After.At = time.Since(start).Seconds()
	if debugURL != "" {
		saveProfiles(ctx, debugURL, o.profileDir, "end", log)
	}
	return nil
}

// sampleLoop samples every interval from start until until (or until ctx
// ends, or the server exits) and returns the samples. With debugURL set it
// saves profiles when the last third starts.
func sampleLoop(ctx context.Context, o *options, smp *sampler, d *driver, p *proc.Proc, start, until time.Time, debugURL string, log *slog.Logger, stderr io.Writer) []Sample {
	var samples []Sample
	last := start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	third := start.Add(2 * o.duration / 3)
	profiled := debugURL == ""
	failures := 0
	for k := 1; ; k++ {
		at := start.Add(time.Duration(k) * o.interval)
		if at.After(until.Add(time.Millisecond)) {
			return samples
		}
		timer.Reset(time.Until(at))
		select {
		case <-ctx.Done():
			return samples
		case <-p.Exited():
			log.Error("the server exited", "err", p.Err())
			return samples
		case <-timer.C:
		}
		w := d.stats.interval()
		now := time.Now()
		s, err := smp.sample(ctx)
		if err != nil {
			log.Warn("sampling", "err", err)
			if failures++; failures >= 3 {
				return samples
			}
			continue
		}
		failures = 0
		s.At = now.Sub(start).Seconds()
		s.addLoad(w, now.Sub(last).Seconds(), d.streamsOpen.Load())
		last = now
		samples = append(samples, s)
		fmt.Fprintf(stderr, "soak: %5.0fs  rss %s  goroutines %d  files %d  streams %s  ok/s %.0f  p99 %.2f ms  refused %d  failed %d  lost %d\n",
			s.At, fmtBytes(float64(s.RSS)), s.Goroutines, s.OpenFiles, fmtBytes(float64(streamBytes(s))), s.OKPerSecond, s.P99MS,
			s.Calls[classRefused], s.Calls[classFailed], s.Calls[classLost])
		if !profiled && !now.Before(third) {
			saveProfiles(ctx, debugURL, o.profileDir, "third", log)
			profiled = true
		}
	}
}

// streamBytes is the bytes of every stream of a sample.
func streamBytes(s Sample) uint64 {
	var n uint64
	for _, st := range s.Streams {
		n += st.Bytes
	}
	return n
}

// saveProfiles saves the server's heap and goroutine profiles as
// dir/heap-<tag>.pb.gz and dir/goroutine-<tag>.pb.gz.
func saveProfiles(ctx context.Context, debugURL, dir, tag string, log *slog.Logger) {
	for _, name := range []string{"heap", "goroutine"} {
		path := filepath.Join(dir, name+"-"+tag+".pb.gz")
		if err := proc.Fetch(ctx, debugURL+name+"?gc=1", path); err != nil {
			log.Warn("saving a profile", "profile", name, "err", err)
			continue
		}
		log.Info("profile saved", "path", path)
	}
}

// gogc describes the server's GC target.
func gogc(gcPercent int) string {
	switch {
	case gcPercent >= 0:
		return fmt.Sprintf("--gc-percent %d", gcPercent)
	case os.Getenv("GOGC") != "":
		return "GOGC=" + os.Getenv("GOGC")
	default:
		return "400 (mcpstream's default)"
	}
}

// loadConfig is the driver's configuration from the flags.
func (o *options) loadConfig(params []byte, rate float64) loadConfig {
	return loadConfig{params: params, rate: rate, clients: o.clients, maxCalls: o.maxCalls, parallel: o.parallel,
		queue: o.queue, streamShare: o.streamShare, streamHold: o.streamHold, abruptShare: o.abrupt,
		cutWithin: o.cutWithin, timeout: o.timeout, seed: o.seed}
}
