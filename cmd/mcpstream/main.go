// Command mcpstream serves the Model Context Protocol on NATS JetStream.
//
//	mcpstream dev        embedded JetStream + gateway + example workers, one process
//	mcpstream gateway    an MCP gateway on an existing NATS cluster
//	mcpstream worker     example worker groups on an existing NATS cluster
//	mcpstream provision  create or update streams and buckets
//	mcpstream replay     print, follow or re-run the recorded requests
//	mcpstream bench      drive any Streamable HTTP MCP endpoint with load
//	mcpstream stdio      bridge a stdio MCP client to a remote endpoint
//	mcpstream apikey     create, revoke and list the gateway's API keys
//	mcpstream health     ask a /healthz or /readyz URL (a container's health check)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpstream/mcpstream/streams"
)

const usage = `mcpstream serves the Model Context Protocol on NATS JetStream.

Usage:
  mcpstream dev        [flags]  embedded JetStream, a gateway and example workers in one process
  mcpstream gateway    [flags]  an MCP gateway (Streamable HTTP on /mcp) on a NATS cluster
  mcpstream worker     [flags]  example worker groups on a NATS cluster
  mcpstream provision  [flags]  create or update the streams and buckets
  mcpstream replay     [flags]  print the recorded requests as JSON lines, follow them, or send them again (--to)
  mcpstream bench      [flags]  drive any Streamable HTTP MCP endpoint: closed or open loop, idle streams
  mcpstream stdio      --url U  bridge a client that spawns stdio servers to a remote MCP endpoint
  mcpstream apikey     create|revoke|list  the gateway's API keys (--api-keys): make one (printed once), revoke, list
  mcpstream health     --url U  exit 0 when U (a /healthz or /readyz) answers 2xx: a health check for images without a shell

Run "mcpstream <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"dev":       runDev,
		"gateway":   runGateway,
		"worker":    runWorker,
		"provision": runProvision,
		"replay":    runReplay,
		"bench":     runBench,
		"stdio":     runStdio,
		"health":    runHealth,
		"apikey": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runAPIKey(ctx, args, os.Stdin, stdout, stderr)
		},
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mcpstream: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	ctx, stop := onSignals(args[0], stderr, func() { os.Exit(1) })
	defer stop()
	var fatal fatalLog
	if err := cmd(context.WithValue(ctx, fatalLogKey{}, &fatal), args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if fatal.log != nil {
			fatal.log.Error("mcpstream "+args[0]+" failed", "command", args[0], "err", err)
		} else {
			fmt.Fprintf(stderr, "mcpstream %s: %v\n", args[0], err)
		}
		return 1
	}
	return 0
}

// onSignals returns a context that ends on the first SIGINT or SIGTERM
// (the command then drains), and stop, which stops watching. A later
// signal goes to whoever waits for one (nextSignal: the gateway's
// --retire-delay); with none waiting, it writes why to stderr and calls
// exit (os.Exit(1)) at once: the command is asked a second time, and
// its drain is not waited for.
func onSignals(name string, stderr io.Writer, exit func()) (_ context.Context, stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	w := &signalWaiters{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), signalWaitersKey{}, w))
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		for {
			select {
			case s := <-sigs:
				if w.wake() {
					continue
				}
				fmt.Fprintf(stderr, "mcpstream %s: %s again: exiting without waiting for the drain\n", name, s)
				exit()
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, sync.OnceFunc(func() {
		signal.Stop(sigs)
		close(done)
		<-ended
		cancel()
	})
}

// signalWaiters is who waits for the next signal after the first.
type signalWaiters struct {
	mu   sync.Mutex
	next chan struct{}
}

type signalWaitersKey struct{}

// wake closes the channel of the one waiting for a signal, if any, and
// reports whether there was one.
func (w *signalWaiters) wake() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil {
		return false
	}
	close(w.next)
	w.next = nil
	return true
}

// nextSignal returns a channel closed by the next SIGINT or SIGTERM that
// run's onSignals gets (instead of that signal ending the process), and
// a function to stop waiting for it; for a ctx not from onSignals, a
// channel closed by the next signal the process gets.
func nextSignal(ctx context.Context) (<-chan struct{}, func()) {
	w, ok := ctx.Value(signalWaitersKey{}).(*signalWaiters)
	if !ok {
		again, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		return again.Done(), stop
	}
	ch := make(chan struct{})
	w.mu.Lock()
	w.next = ch
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		if w.next == ch {
			w.next = nil
		}
		w.mu.Unlock()
	}
}

// fatalLog holds the logger of the running command, once it has one, for
// run to log the error the command ends with (at ERROR, in the format of
// --log-format); before, that error is a line of plain text.
type fatalLog struct{ log *slog.Logger }

type fatalLogKey struct{}

// logFatalTo makes log the logger of the error the command of ctx ends
// with (run's; nothing for a ctx not from run).
func logFatalTo(ctx context.Context, log *slog.Logger) {
	if f, ok := ctx.Value(fatalLogKey{}).(*fatalLog); ok {
		f.log = log
	}
}

// common are the flags every command shares.
type common struct {
	gcPercent  int
	debugAddr  string
	log        logFlags
	partitions int
	replicas   int
	ackWait    time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	c.log.register(fs, "info")
	fs.IntVar(&c.gcPercent, "gc-percent", -1, "Go GC target percentage (default 400 unless GOGC is set): higher trades memory for fewer collections and a shorter latency tail")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "HOST:PORT serving Go's /debug/pprof/ profiles (off by default; keep it private)")
	fs.IntVar(&c.partitions, "partitions", 0, "request stream partitions when provisioning (default 4)")
	fs.IntVar(&c.replicas, "replicas", 0, "stream and bucket replicas when provisioning (default 1)")
	fs.DurationVar(&c.ackWait, "ack-wait", 0, "how long a worker may hold an envelope without telling the server it works on it before it is redelivered: about what a dead worker's calls wait (default 4s)")
}

func (c *common) topology() streams.Topology {
	return streams.Topology{Partitions: c.partitions, Replicas: c.replicas, AckWait: c.ackWait}
}

// logger builds the command's logger, applies the GC target and, with
// --debug-addr, starts the profiling endpoint; stop closes the endpoint
// (the command defers it).
func (c *common) logger(stderr io.Writer) (_ *slog.Logger, stop func(), _ error) {
	log, err := c.log.logger(stderr)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case c.gcPercent >= 0:
		debug.SetGCPercent(c.gcPercent)
	case os.Getenv("GOGC") == "":
		// Measured on 2 cores at half load: p99 21 ms at the Go default of
		// 100, 10 ms at 400, for 8-10.5 KB instead of 4.7 KB per streaming session.
		debug.SetGCPercent(400)
	}
	if c.debugAddr == "" {
		return log, func() {}, nil
	}
	ln, err := net.Listen("tcp", c.debugAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	log.Info("profiles served", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return log, func() {
		_ = srv.Close() // a profile being taken is cut short: the command is ending
		<-done
	}, nil
}

// metricsUsage is the help of --metrics-addr (dev, gateway and worker).
const metricsUsage = "HOST:PORT serving Prometheus metrics at /metrics (off by default; port 0 picks one)"

// metricsFlag registers --metrics-addr.
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics-addr", "", metricsUsage)
}

// serveMetrics, with addr set, serves /metrics on addr from a new registry
// holding the Go runtime and process collectors, /healthz (200 while
// alive says so: the process runs and its NATS connections are not
// closed for good) and /readyz (200 while ready says so), and prints the
// URL. It returns the registry for the gateway's and the workers' metrics
// (nil without addr) and a function that closes the endpoint, or an error
// when addr cannot be listened on.
func serveMetrics(addr string, stdout io.Writer, ready, alive func() error) (prometheus.Registerer, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := alive(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "mcpstream: metrics http://%s/metrics\n", ln.Addr())
	return reg, func() { _ = srv.Close() }, nil
}

// negativeMeans are the numeric flags of dev, gateway and worker whose
// negative value is documented (what it means is in their help); every
// other numeric flag of theirs refuses one (refuseNegative).
var negativeMeans = map[string]bool{
	"gc-percent":          true, // the default, -1: 400 unless GOGC is set
	"group-queue-target":  true, // no admission per group
	"principal-rate-hold": true, // refuse at once
	"load-interval":       true, // never report the load
}

// refuseNegative returns an error naming the first numeric flag of fs (an
// int, an int64, a float64 or a duration) set to a negative value that
// has no documented meaning (negativeMeans), instead of letting it fall
// back to its default as zero does; withEnv names its variable too.
func refuseNegative(fs *flag.FlagSet, withEnv bool) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if err != nil || !ok || negativeMeans[f.Name] {
			return
		}
		neg := false
		switch v := g.Get().(type) {
		case int:
			neg = v < 0
		case int64:
			neg = v < 0
		case float64:
			neg = v < 0
		case time.Duration:
			neg = v < 0
		}
		switch {
		case neg && withEnv:
			err = fmt.Errorf("--%s (or $%s) must not be negative: %s", f.Name, envName(f.Name), f.Value)
		case neg:
			err = fmt.Errorf("--%s must not be negative: %s", f.Name, f.Value)
		}
	})
	return err
}
