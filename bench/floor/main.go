// Command floor measures, on this machine and in one run, what a call's
// parts cost alone, and mcpstream's CPU a call against their sum:
//
//   - http: a loopback net/http server with a trivial JSON-RPC handler
//     (reads the id and method, answers a canned echo result), driven by
//     the same load driver and workload as mcpstream (--sessions
//     closed-loop MCP sessions calling echo); its process's CPU a call;
//   - jetstream: the message pattern of a call without HTTP or any of
//     mcpstream's logic, in a process of its own (this command again,
//     run-jetstream) against an embedded nats-server laid out as
//     `mcpstream dev`'s (4 file-stored request streams, one replica, a
//     durable pull consumer each): publish with a Nats-Msg-Id and a
//     stored acknowledgement, pull (Consume), reply on core NATS, ack;
//     --sessions goroutines one call at a time each; that process's CPU
//     a call;
//   - joined: http's handler and jetstream's pattern in one process (this
//     command again), a tools/call published and answered when its reply
//     comes back, with no session, envelope, admission or schema: what
//     joining the parts costs, without mcpstream's logic;
//   - mcpstream: `mcpstream dev` under the same load as http.
//
// Three more parts run when --parts names them: joined-core, the joined
// part with the stream taken out (core NATS request and reply between the
// gateway's and the worker's connections: no stored request, no
// at-least-once delivery, no replay), and the in-process servers mcp-go
// and go-sdk (bench/compare's, JSON responses) under the same load. With
// them the report gives each part's throughput against theirs: what the
// issue's throughput targets would take, and which guarantee.
//
// With --server-cpus, every server process and the jetstream part run on
// those CPUs (taskset -c) and the load driver, this command, on
// --driver-cpus: on a small machine, each part's CPU a call then counts
// none of the scheduling its driver would cause on the same cores.
//
// The floor is http + jetstream; the ratio is mcpstream's CPU a call over
// it, and the report splits it in two: joined over the floor (the cost of
// the parts' hand-offs in one process) and mcpstream over joined (the cost
// of mcpstream's own logic). Each of --rounds rounds runs the four in turn
// (every other round in reverse), every server process at GC target
// --gogc. With --profile, the last round's mcpstream run is profiled (CPU)
// over its measured window, for `go tool pprof -top`; with
// --profile-joined, its joined run, and with both the report splits the
// two parts' CPU a call into components (the gateway's code, the
// worker's, net/http, the NATS client and server, GC, the scheduler):
// where mcpstream's CPU a call over joined's goes. With --mcpstream,
// the mcpstream part runs the binary given rather than one built from the
// module. With --baseline BIN, each round also runs BIN's `dev` (the
// baseline part) next to the mcpstream part, the two in turn (the order
// reversed every other round), and the report gives mcpstream over the
// baseline per round, its median, and in how many rounds it was lower:
// two builds compared in one sitting on a noisy machine, with
// --parts joined,mcpstream (the joined part each round's yardstick).
//
//	go run ./bench/floor --mcpstream /tmp/after --baseline /tmp/before --parts joined,mcpstream --rounds 8 --duration 8s
//
//	go run ./bench/floor --sessions 64 --duration 10s --rounds 2 --profile /tmp/dev.pprof
//
//	go run ./bench/floor --parts joined,mcpstream --rounds 1 --duration 20s --server-cpus 1 --driver-cpus 0 --profile /tmp/dev.pprof --profile-joined /tmp/joined.pprof
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/bench/internal/proc"
	"github.com/mcpstream/mcpstream/bench/internal/targets"
)

func main() {
	if len(os.Args) > 1 && slices.Contains([]string{"serve-http", "serve-mcpgo", "serve-gosdk"}, os.Args[1]) {
		os.Exit(serveMode(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "serve-joined" {
		os.Exit(serveJoined(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "run-jetstream" {
		os.Exit(runJetStream(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(floor(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	cfg     bench.Config
	rounds  int
	gogc    int
	profile string
	// profileJoined is where the joined part's CPU profile of the last
	// round goes; with profile too, the report splits both parts' CPU a
	// call into components (where).
	profileJoined string
	jsonPath      string
	parts         []string
	// serverCPUs and driverCPUs are taskset -c CPU lists, or empty.
	serverCPUs, driverCPUs string
	// mcpstream is the mcpstream binary the mcpstream part runs; empty:
	// one built from the module.
	mcpstream string
	// baseline is the mcpstream binary the baseline part runs, next to
	// the mcpstream part in every round; empty: no baseline part.
	baseline string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.IntVar(&o.cfg.Sessions, "sessions", 64, "closed-loop sessions (jetstream: goroutines) making calls")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "run every part as an open loop at this many calls/s instead of closed loops, so that each part's CPU a call is measured at the same rate (0: closed loops, each part as fast as it goes)")
	fs.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "measured window of each run")
	fs.DurationVar(&o.cfg.Warmup, "warmup", 2*time.Second, "warm-up of each run (not counted)")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds, each running http, jetstream, joined and mcpstream")
	fs.IntVar(&o.gogc, "gogc", 400, "GC target of every server process and of the jetstream part's")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of mcpstream dev over the last round's measured window to this file")
	fs.StringVar(&o.profileJoined, "profile-joined", "", "write a CPU profile of the joined part over the last round's measured window to this file; with --profile, the report splits both parts' CPU a call into components from the two profiles")
	fs.StringVar(&o.jsonPath, "json", "", "write the runs and the summary as JSON to this file")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "CPU list (taskset -c form, such as 1 or 2-3) every server process and the jetstream part run on; empty: any")
	fs.StringVar(&o.driverCPUs, "driver-cpus", "", "CPU list the load driver (this command) runs on; empty: any")
	fs.StringVar(&o.mcpstream, "mcpstream", "", "the mcpstream binary the mcpstream part runs, instead of one built from the module: two builds compared in one sitting, one run each in turn")
	fs.StringVar(&o.baseline, "baseline", "", "an mcpstream binary to run as the baseline part, next to the mcpstream part in every round, the two in turn; the report gives mcpstream over it")
	parts := fs.String("parts", strings.Join(defaultParts, ","), "comma-separated parts each round runs, of "+strings.Join(allParts, ", "))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for p := range strings.SplitSeq(*parts, ",") {
		if !slices.Contains(allParts, p) || slices.Contains(o.parts, p) {
			return nil, fmt.Errorf("--parts: %q is not a part, or named twice (parts: %s)", p, strings.Join(allParts, ", "))
		}
		o.parts = append(o.parts, p)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.rounds < 1 || o.cfg.Sessions < 1 || o.gogc < 1 || o.cfg.Duration <= 0 || o.cfg.Rate < 0 {
		return nil, errors.New("--rounds, --sessions, --gogc and --duration must be positive, --rate not negative")
	}
	for flag, bin := range map[string]string{"--mcpstream": o.mcpstream, "--baseline": o.baseline} {
		if bin == "" {
			continue
		}
		if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s %s: not an executable file", flag, bin)
		}
	}
	if o.profileJoined != "" && !slices.Contains(o.parts, partJoined) {
		return nil, errors.New("--profile-joined needs the joined part")
	}
	if o.baseline != "" {
		i := slices.Index(o.parts, partMcpstream)
		if i < 0 {
			return nil, errors.New("--baseline needs the mcpstream part, which it runs next to")
		}
		o.parts = slices.Insert(o.parts, i+1, partBaseline)
	}
	o.cfg.Tool, o.cfg.Args, o.cfg.Timeout = "echo", json.RawMessage(`{"text":"hello"}`), 30*time.Second
	return o, nil
}

func floor(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "floor: %v\n", err)
		return 2
	}
	if o.driverCPUs != "" && os.Getenv(driverPinned) == "" {
		// Run again on the driver's CPUs; the servers it starts are
		// pinned on their own.
		err := pinSelf(o.driverCPUs, args)
		fmt.Fprintf(stderr, "floor: --driver-cpus: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	debug.SetGCPercent(o.gogc) // the driver at the servers' GC target too (it is not measured)
	rep := &report{Command: append([]string{"go run ./bench/floor"}, args...), Sessions: o.cfg.Sessions, Rate: o.cfg.Rate, GOGC: o.gogc,
		CPUs: machineCPUs(), GoVersion: runtime.Version(), ServerCPUs: o.serverCPUs, DriverCPUs: o.driverCPUs}
	err = runAll(ctx, o, rep, stderr)
	rep.summarize()
	var splitErr error // the runs are written even when it fails
	if err == nil && o.profile != "" && o.profileJoined != "" {
		splitErr = rep.split(o.rounds, o.profileJoined, o.profile)
	}
	rep.write(stdout)
	if err == nil && o.jsonPath != "" {
		err = bench.WriteFile(o.jsonPath, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		})
	}
	if err = errors.Join(err, splitErr); err != nil {
		fmt.Fprintf(stderr, "floor: %v\n", err)
		return 1
	}
	return 0
}

// part names.
const (
	partHTTP      = "http"
	partJetStream = "jetstream"
	partJoined    = "joined"
	partMcpstream = "mcpstream"
	partCore      = "joined-core"
	partMCPGo     = "mcp-go"
	partGoSDK     = "go-sdk"
	// partBaseline is --baseline's binary's dev, next to partMcpstream.
	partBaseline = "baseline"
)

// defaultParts run unless --parts says otherwise; allParts can run.
var (
	defaultParts = []string{partHTTP, partJetStream, partJoined, partMcpstream}
	allParts     = []string{partHTTP, partJetStream, partJoined, partCore, partMcpstream, partMCPGo, partGoSDK}
)

// runAll runs the rounds, appending each run to rep.
func runAll(ctx context.Context, o *options, rep *report, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "mcpstream-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.mcpstream
	if bin == "" {
		if bin, err = proc.BuildMcpstream(ctx, dir); err != nil {
			return err
		}
	}
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, driverPinned+"=")
	}), "GOGC="+strconv.Itoa(o.gogc))
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for r := 1; r <= o.rounds; r++ {
		parts := slices.Clone(o.parts)
		if r%2 == 0 {
			slices.Reverse(parts)
		}
		for _, part := range parts {
			fmt.Fprintf(stderr, "floor: round %d/%d: %s (load average %s)\n", r, o.rounds, part, proc.LoadAverage())
			rn := run{Round: r, Part: part, LoadBefore: proc.LoadAverage()}
			var err error
			switch part {
			case partJetStream:
				var res jsResult
				res, err = jsRoundTripsIn(ctx, o.pinned(exe), env, fmt.Sprintf("%s/js%d", dir, r), o.cfg)
				rn.Throughput, rn.CPUPerCallUs, rn.Cores = res.Throughput(), us(res.PerCall), res.CPU.Seconds()/res.Window.Seconds()
			case partHTTP:
				err = proc.ServeEnv(ctx, o.pinned(exe, "serve-http", "--addr", "127.0.0.1:0"), env, listening, stderr, func(p *proc.Proc) error {
					return drive(ctx, o.cfg, p, &rn, "")
				})
			case partJoined, partCore:
				argv := o.pinned(exe, "serve-joined", "--addr", "127.0.0.1:0", "--data", fmt.Sprintf("%s/%s%d", dir, part, r))
				if part == partCore {
					argv = append(argv, "--core")
				}
				profileURL := ""
				if part == partJoined && r == o.rounds && o.profileJoined != "" {
					debugAddr, derr := proc.FreeAddr()
					if derr != nil {
						return derr
					}
					argv = append(argv, "--debug-addr", debugAddr)
					profileURL = o.profileURL(debugAddr, o.profileJoined)
				}
				err = proc.ServeEnv(ctx, argv, env, listening, stderr, func(p *proc.Proc) error {
					return drive(ctx, o.cfg, p, &rn, profileURL)
				})
			case partMCPGo, partGoSDK:
				mode := map[string]string{partMCPGo: "serve-mcpgo", partGoSDK: "serve-gosdk"}[part]
				err = proc.ServeEnv(ctx, o.pinned(exe, mode, "--addr", "127.0.0.1:0"), env, listening, stderr, func(p *proc.Proc) error {
					return drive(ctx, o.cfg, p, &rn, "")
				})
			case partMcpstream, partBaseline:
				bin, profile := bin, ""
				if part == partBaseline {
					bin = o.baseline
				} else if r == o.rounds {
					profile = o.profile
				}
				debugAddr, derr := proc.FreeAddr()
				if derr != nil {
					return derr
				}
				argv := o.pinned(bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn", "--data", fmt.Sprintf("%s/%s%d", dir, part, r), "--debug-addr", debugAddr)
				err = proc.ServeEnv(ctx, argv, env, endpointLine, stderr, func(p *proc.Proc) error {
					if profile == "" {
						return drive(ctx, o.cfg, p, &rn, "")
					}
					return drive(ctx, o.cfg, p, &rn, o.profileURL(debugAddr, profile))
				})
			}
			rn.LoadAfter = proc.LoadAverage()
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, part, err)
			}
			fmt.Fprintf(stderr, "floor: %s: %.0f calls/s, %.1f us CPU a call\n", part, rn.Throughput, rn.CPUPerCallUs)
			rep.Runs = append(rep.Runs, rn)
		}
	}
	return nil
}

// profileURL is the URL drive fetches a CPU profile of the measured
// window from, of a server whose profiles are at debugAddr, with the file
// it goes to after "&out=".
func (o *options) profileURL(debugAddr, out string) string {
	return "http://" + debugAddr + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(o.cfg.Duration.Seconds())) + "&out=" + out
}

var (
	listening    = regexp.MustCompile(`^listening on (\S+)$`)
	endpointLine = regexp.MustCompile(`MCP endpoint (http://\S+)`)
)

// drive runs the load at p's endpoint and fills rn; with profileURL (its
// query's out naming the file), it profiles the server over the measured
// window.
func drive(ctx context.Context, cfg bench.Config, p *proc.Proc, rn *run, profileURL string) error {
	cfg.URL, cfg.ServerPID, cfg.Label = p.Endpoint(), p.PID(), rn.Part
	profErr := make(chan error, 1)
	if profileURL != "" {
		cfg.Started = func() {
			go func() {
				select {
				case <-time.After(cfg.Warmup):
				case <-ctx.Done():
					profErr <- ctx.Err()
					return
				}
				base, out, _ := strings.Cut(profileURL, "&out=")
				profErr <- proc.Fetch(ctx, base, out)
			}()
		}
	} else {
		profErr <- nil
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if n := res.ErrorCount(); n > 0 {
		return fmt.Errorf("%d calls failed: %s", n, bench.FormatCounts(res.Errors))
	}
	rn.Throughput, rn.CPUPerCallUs, rn.Cores = res.Throughput, us(res.ServerPerCall()), res.ServerCores()
	rn.P50Ms, rn.P99Ms = res.P50.Seconds()*1e3, res.P99.Seconds()*1e3
	return <-profErr
}

// serveMode is the harness re-executed as a server in mode: serve-http,
// the HTTP floor's (rpcHandler), or serve-mcpgo and serve-gosdk, the
// in-process MCP servers (bench/compare's). It serves on /mcp at --addr,
// prints "listening on ADDR", and stops on SIGINT or SIGTERM.
func serveMode(mode string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var h http.Handler
	switch mode {
	case "serve-mcpgo":
		h = targets.MCPGo()
	case "serve-gosdk":
		h = targets.GoSDK()
	default:
		h = rpcHandler(nil)
	}
	return serve(ctx, mode, *addr, h, stdout, stderr)
}

// serve serves h on /mcp at addr, prints "listening on ADDR", and stops
// when ctx ends; name prefixes its errors.
func serve(ctx context.Context, name, addr string, h http.Handler, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return 0
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
