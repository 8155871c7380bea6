package main

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

// The flood's load runs in a child process of the harness (this binary,
// run with childArg first): in the harness's own process its goroutines
// would share the Go scheduler with quiet's driver, and quiet's latency
// would count the driver's queueing behind them, not the server's. A real
// flooding client is another process, most often on another machine.
const (
	childArg = "flood-driver"
	// childHeaderEnv carries the flood principal's headers to the child,
	// one "Name: value" a line (kept off the command line, which other
	// users of the machine can read).
	childHeaderEnv = "MCPSTREAM_FLOOD_HEADER"
	// childReady is the line the child prints once its sessions are set
	// up and its calls go out.
	childReady = "flood driver started"
)

// floodDriver is the flood's child process.
type floodDriver struct {
	p   *proc.Proc
	out string // where the child writes its result
}

// startFlood starts the child that drives cfg (URL, sessions, rate,
// warm-up, duration) with cfg.Header, and returns once its calls go out.
func startFlood(ctx context.Context, cfg bench.Config, dir string) (*floodDriver, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness's binary: %w", err)
	}
	f, err := os.CreateTemp(dir, "flood-result-")
	if err != nil {
		return nil, err
	}
	out := f.Name()
	f.Close()
	argv := []string{exe, childArg, "--url", cfg.URL, "--label", cfg.Label, "--sessions", strconv.Itoa(cfg.Sessions),
		"--rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64), "--warmup", cfg.Warmup.String(), "--duration", cfg.Duration.String(),
		"--out", out}
	env := append(os.Environ(), childHeaderEnv+"="+formatHeader(cfg.Header))
	p, err := proc.StartEnv(ctx, argv, env, regexp.MustCompile(`^(`+childReady+`)$`))
	if err != nil {
		return nil, fmt.Errorf("starting the flood's driver: %w", err)
	}
	return &floodDriver{p: p, out: out}, nil
}

// wait waits for the child to finish and returns its result.
func (d *floodDriver) wait(ctx context.Context) (*bench.Result, error) {
	select {
	case <-d.p.Exited():
	case <-ctx.Done():
		d.p.Kill()
		return nil, ctx.Err()
	}
	if err := d.p.Err(); err != nil {
		return nil, fmt.Errorf("the flood's driver: %w\n%s", err, d.p.StderrTail())
	}
	f, err := os.Open(d.out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res bench.Result
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&res); err != nil {
		return nil, fmt.Errorf("reading the flood's result: %w", err)
	}
	return &res, nil
}

// kill ends the child if it still runs.
func (d *floodDriver) kill() { d.p.Kill() }

// formatHeader writes h as "Name: value" lines.
func formatHeader(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

// parseHeader reads "Name: value" lines.
func parseHeader(s string) (http.Header, error) {
	h := http.Header{}
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("header line %q: want Name: value", line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// runChild is the flood's driver: one bench.Run, its result written as a
// gob to --out.
func runChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(childArg, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	var out string
	fs.StringVar(&cfg.URL, "url", "", "MCP endpoint")
	fs.StringVar(&cfg.Label, "label", "flood", "label of the result")
	fs.IntVar(&cfg.Sessions, "sessions", 64, "sessions")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop rate (0: closed loop)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured window")
	fs.StringVar(&out, "out", "", "file for the result (gob)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" {
		return errors.New("--out is required")
	}
	h, err := parseHeader(os.Getenv(childHeaderEnv))
	if err != nil {
		return err
	}
	cfg.Header, cfg.Tool, cfg.Args = h, "echo", []byte(`{"text":"hello"}`)
	cfg.Started = func() { fmt.Fprintln(stdout, childReady) }
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Config.Started = nil
	f, err := os.Create(filepath.Clean(out))
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(f).Encode(res); err != nil {
		f.Close()
		return fmt.Errorf("writing the result: %w", err)
	}
	return f.Close()
}
