// Command flood measures whether a flood from one principal moves another
// principal's latency, against `mcpstream dev` with per-principal rate
// limits (--principal-rate, --principal-burst).
//
// It starts one server whose principals are named by a header
// (--principal-header) or by API keys (--api-keys), each limited to --rate
// calls a second in bursts of --burst, and runs two phases on it:
//
//  1. baseline: principal "quiet" alone, an open loop of echo calls well
//     below its limit (--quiet-rate over --quiet-sessions), latency
//     measured from each call's due time (no coordinated omission);
//  2. flood: the same quiet load while principal "flood" calls at
//     --flood-rate (default 2,000/s, 10 times its limit) over
//     --flood-sessions, or with --flood-rate 0 as fast as it can (a closed
//     loop: each session calls again as soon as it is answered). The flood
//     is driven from a child process, as a real client would be.
//
// With --rounds N the two phases alternate N times on that server, and the
// verdict takes the median of the rounds' ratios, so that a machine whose
// speed drifts (shared cores) hits baseline and flood alike.
//
// Then, unless --unlimited=false, a third phase on a fresh server without
// the rate limit shows what the same flood does there. It prints a table
// and the ratio of quiet's p99 under the flood to its baseline p99, and
// exits 1 when that ratio exceeds --max-ratio (or quiet saw errors while
// the limit held).
//
//	go run ./bench/flood                       # header principals, 200/s, burst 50
//	go run ./bench/flood --flood-rate 0        # the flood as fast as it can
//	go run ./bench/flood --auth api-keys --json flood.json
//	go run ./bench/flood --rounds 3 --duration 10s  # on a machine shared with other work
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runChild(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "flood driver: %v\n", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(flood(os.Args[1:], os.Stdout, os.Stderr))
}

// The principals of the run.
const (
	quietPrincipal = "quiet"
	floodPrincipal = "flood"
	probePrincipal = "probe" // waits for the server to answer (API keys only)
)

// Authentication modes.
const (
	authHeader  = "header"
	authAPIKeys = "api-keys"
)

// options are the harness's flags.
type options struct {
	rate          float64
	burst         int
	auth          string
	header        string
	quietRate     float64
	quietSessions int
	floodSessions int
	floodRate     float64
	duration      time.Duration
	warmup        time.Duration
	maxRatio      float64
	unlimited     bool
	rounds        int
	inProcess     bool
	gogc          int
	serverCPUs    string
	serverArgs    []string
	jsonPath      string
	noProgress    bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.Float64Var(&o.rate, "rate", 200, "per-principal rate limit of the server in calls/s (--principal-rate)")
	fs.IntVar(&o.burst, "burst", 50, "per-principal burst of the server (--principal-burst)")
	fs.StringVar(&o.auth, "auth", authHeader, "how principals are named: header (--principal-header) or api-keys (--api-keys, bearer keys)")
	fs.StringVar(&o.header, "principal-header", "X-Principal", "the principal header, with --auth header")
	fs.Float64Var(&o.quietRate, "quiet-rate", 100, "quiet's open-loop rate in calls/s (keep it below --rate)")
	fs.IntVar(&o.quietSessions, "quiet-sessions", 4, "quiet's sessions")
	fs.IntVar(&o.floodSessions, "flood-sessions", 64, "flood's sessions")
	fs.Float64Var(&o.floodRate, "flood-rate", 2000, "flood's open-loop rate in calls/s, 10x the default limit; 0: a closed loop, each session calling again as soon as it is answered (as fast as it can)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured window of each phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up of each phase (not counted)")
	fs.Float64Var(&o.maxRatio, "max-ratio", 2, "the largest quiet p99 under the flood over its baseline p99 that passes")
	fs.IntVar(&o.rounds, "rounds", 1, "how many times the baseline and the flood alternate on the server; the verdict is the median of the rounds' ratios (for a machine whose speed drifts)")
	fs.BoolVar(&o.unlimited, "unlimited", true, "also run the flood against a fresh server without the rate limit (a contrast; never fails the run)")
	fs.BoolVar(&o.inProcess, "in-process", false, "drive the flood from the harness's own process, not a child process (quiet's driver then queues behind the flood's goroutines too)")
	fs.IntVar(&o.gogc, "gogc", 400, "GC percentage of the server (mcpstream's default is 400)")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "run the server under `taskset -c` with this CPU list")
	serverArgs := fs.String("server-args", "", "more flags for mcpstream dev, space-separated (e.g. --debug-addr 127.0.0.1:6060 to profile it)")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.BoolVar(&o.noProgress, "no-progress", false, "draw no progress bar")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.serverArgs = strings.Fields(*serverArgs)
	switch {
	case o.auth != authHeader && o.auth != authAPIKeys:
		return nil, fmt.Errorf("--auth %q: want %s or %s", o.auth, authHeader, authAPIKeys)
	case o.auth == authHeader && strings.TrimSpace(o.header) == "":
		return nil, errors.New("--principal-header must name a header")
	case o.rate <= 0 || o.burst <= 0:
		return nil, errors.New("--rate and --burst must be positive")
	case o.quietRate <= 0 || o.quietRate >= o.rate:
		return nil, fmt.Errorf("--quiet-rate must be positive and below --rate (%g): quiet stays within its limit", o.rate)
	case o.quietSessions <= 0 || o.floodSessions <= 0 || o.rounds <= 0:
		return nil, errors.New("--quiet-sessions, --flood-sessions and --rounds must be positive")
	case o.floodRate < 0:
		return nil, errors.New("--flood-rate must not be negative")
	case o.duration <= 0 || o.warmup < 0:
		return nil, errors.New("--duration must be positive and --warmup not negative")
	case o.maxRatio < 1:
		return nil, errors.New("--max-ratio must be at least 1")
	case o.gogc <= 0:
		return nil, errors.New("--gogc must be positive")
	}
	return o, nil
}

func flood(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "flood: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	load := [2]string{loadAverage()}
	phases, err := run(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flood: %v\n", err)
		return 1
	}
	load[1] = loadAverage()
	v := judge(o, phases)
	writeReport(stdout, o, phases, v, load)
	if o.jsonPath != "" {
		if err := bench.WriteFile(o.jsonPath, func(w io.Writer) error { return writeJSON(w, o, phases, v, load) }); err != nil {
			fmt.Fprintf(stderr, "flood: %v\n", err)
			return 1
		}
	}
	if !v.Pass {
		return 1
	}
	return 0
}

// loadAverage is the machine's load average over the last minute (Linux),
// or "" where the system does not say: others' work on a shared machine
// moves the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// phase is what one phase measured.
type phase struct {
	Name    string        `json:"name"`
	Round   int           `json:"round"` // from 1
	Limited bool          `json:"rate_limited"`
	Quiet   *bench.Result `json:"quiet"`
	Flood   *bench.Result `json:"flood,omitempty"` // nil for the baseline
}

// Phase names.
const (
	phaseBaseline  = "baseline"
	phaseFlood     = "flood"
	phaseUnlimited = "flood, no rate limit"
)

// credentials name the principals to the server: the server's flags, and
// the headers each principal sends.
type credentials struct {
	serverArgs []string
	headers    map[string]http.Header
}

// newCredentials sets up o.auth's credentials for the principals, writing
// the API key file into dir if needed.
func newCredentials(o *options, dir string) (*credentials, error) {
	c := &credentials{headers: map[string]http.Header{}}
	principals := []string{quietPrincipal, floodPrincipal, probePrincipal}
	if o.auth == authHeader {
		c.serverArgs = []string{"--principal-header", o.header}
		for _, p := range principals {
			c.headers[p] = http.Header{http.CanonicalHeaderKey(o.header): {p}}
		}
		c.headers[probePrincipal] = nil // anonymous: spends no one's tokens
		return c, nil
	}
	var file strings.Builder
	file.WriteString("# principal, then the hex SHA-256 of its key (written by bench/flood)\n")
	for _, p := range principals {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("making an API key: %w", err)
		}
		key := hex.EncodeToString(b)
		sum := sha256.Sum256([]byte(key))
		fmt.Fprintf(&file, "%s %s\n", p, hex.EncodeToString(sum[:]))
		c.headers[p] = http.Header{"Authorization": {"Bearer " + key}}
	}
	path := filepath.Join(dir, "api-keys")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		return nil, fmt.Errorf("writing the API keys: %w", err)
	}
	c.serverArgs = []string{"--api-keys", path}
	return c, nil
}

// serverArgv is the command line of mcpstream dev, with or without the
// rate limit.
func serverArgv(o *options, bin string, c *credentials, limited bool) ([]string, error) {
	argv := []string{bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn", "--gc-percent", strconv.Itoa(o.gogc)}
	argv = append(argv, c.serverArgs...)
	if limited {
		argv = append(argv, "--principal-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "--principal-burst", strconv.Itoa(o.burst))
	}
	argv = append(argv, o.serverArgs...)
	if o.serverCPUs != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("--server-cpus: %w", err)
		}
		argv = append([]string{taskset, "-c", o.serverCPUs}, argv...)
	}
	return argv, nil
}

// server is one server of the run and the phases run against it, in turn.
type server struct {
	limited bool
	phases  []*phase // their names and rounds, to be filled
}

// run builds mcpstream, runs the baseline and the flood against a server
// with the rate limit, then (with --unlimited) the flood against one
// without it.
func run(ctx context.Context, o *options, stderr io.Writer) ([]*phase, error) {
	dir, err := os.MkdirTemp("", "mcpstream-flood-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := proc.BuildMcpstream(ctx, dir)
	if err != nil {
		return nil, err
	}
	creds, err := newCredentials(o, dir)
	if err != nil {
		return nil, err
	}
	// The baseline and the flood share a server with the rate limit; the
	// contrast gets a fresh one without it.
	limited := server{limited: true}
	for r := 1; r <= o.rounds; r++ {
		limited.phases = append(limited.phases, &phase{Name: phaseBaseline, Round: r, Limited: true}, &phase{Name: phaseFlood, Round: r, Limited: true})
	}
	servers := []server{limited}
	if o.unlimited {
		servers = append(servers, server{phases: []*phase{{Name: phaseUnlimited, Round: 1}}})
	}
	var phases []*phase
	for _, s := range servers {
		argv, err := serverArgv(o, bin, creds, s.limited)
		if err != nil {
			return nil, err
		}
		err = proc.ServeAs(ctx, argv, nil, creds.headers[probePrincipal], regexp.MustCompile(`MCP endpoint (http://\S+)`), stderr,
			func(p *proc.Proc) error {
				for _, ph := range s.phases {
					fmt.Fprintf(stderr, "flood: phase %q, round %d (server pid %d, %s)\n", ph.Name, ph.Round, p.PID(), strings.Join(argv[1:], " "))
					if err := runPhase(ctx, o, creds, p, ph, dir, stderr); err != nil {
						return fmt.Errorf("phase %q, round %d: %w", ph.Name, ph.Round, err)
					}
					phases = append(phases, ph)
				}
				return nil
			})
		if err != nil {
			return phases, err
		}
	}
	return phases, nil
}

// runPhase drives quiet's load at the server, alone for the baseline, else
// beside the flood: the flood starts first and runs for a second longer
// than quiet's window, so that quiet's whole window is flooded. The
// flood's driver is a child process (see childArg) unless o.inProcess.
func runPhase(ctx context.Context, o *options, creds *credentials, p *proc.Proc, ph *phase, dir string, stderr io.Writer) error {
	name := ph.Name
	quiet := bench.Config{Label: name + "/" + quietPrincipal, URL: p.Endpoint(), ServerPID: p.PID(),
		Sessions: o.quietSessions, Rate: o.quietRate, Conns: 64, Warmup: o.warmup, Duration: o.duration,
		Tool: "echo", Args: []byte(`{"text":"hello"}`), Header: creds.headers[quietPrincipal]}
	if !o.noProgress {
		quiet.Progress = stderr
	}
	if name == phaseBaseline {
		var err error
		ph.Quiet, err = bench.Run(ctx, quiet)
		return err
	}
	fl := bench.Config{Label: name + "/" + floodPrincipal, URL: p.Endpoint(),
		Sessions: o.floodSessions, Rate: o.floodRate, Warmup: o.warmup, Duration: o.duration + time.Second,
		Tool: "echo", Args: []byte(`{"text":"hello"}`), Header: creds.headers[floodPrincipal]}
	wait, err := startFloodLoad(ctx, o, fl, dir)
	if err != nil {
		return err
	}
	ph.Quiet, err = bench.Run(ctx, quiet)
	var floodErr error
	ph.Flood, floodErr = wait(err != nil)
	if err != nil {
		return err
	}
	if floodErr != nil {
		return fmt.Errorf("flood: %w", floodErr)
	}
	if !covers(ph.Flood, ph.Quiet) {
		return fmt.Errorf("the flood's window %s + %s does not cover quiet's %s + %s",
			ph.Flood.Start.Format(time.StampMilli), ph.Flood.Config.Duration, ph.Quiet.Start.Format(time.StampMilli), ph.Quiet.Config.Duration)
	}
	return nil
}

// startFloodLoad starts the flood's load and returns once its calls go
// out; wait(abort) returns its result, ending it first if abort.
func startFloodLoad(ctx context.Context, o *options, fl bench.Config, dir string) (wait func(abort bool) (*bench.Result, error), err error) {
	if !o.inProcess {
		d, err := startFlood(ctx, fl, dir)
		if err != nil {
			return nil, err
		}
		return func(abort bool) (*bench.Result, error) {
			if abort {
				d.kill()
			}
			return d.wait(ctx)
		}, nil
	}
	started := make(chan struct{})
	var once sync.Once
	fl.Started = func() { once.Do(func() { close(started) }) }
	fctx, cancel := context.WithCancel(ctx)
	var res *bench.Result
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, runErr = bench.Run(fctx, fl)
	}()
	select {
	case <-started:
	case <-done:
		cancel()
		return nil, fmt.Errorf("the flood did not start: %w", runErr)
	}
	return func(abort bool) (*bench.Result, error) {
		if abort {
			cancel()
		}
		<-done
		cancel()
		return res, runErr
	}, nil
}

// covers reports whether the measured window of flood spans that of quiet.
func covers(flood, quiet *bench.Result) bool {
	return !flood.Start.After(quiet.Start) &&
		!flood.Start.Add(flood.Config.Duration).Before(quiet.Start.Add(quiet.Config.Duration))
}
