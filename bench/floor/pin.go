package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// driverPinned is set in the environment of the command run again on
// --driver-cpus, so that it does not run itself again, to the number of
// CPUs the machine has (runtime.NumCPU counts those a process may use).
const driverPinned = "MCPSTREAM_FLOOR_DRIVER_PINNED"

// pinSelf replaces this process with itself on cpus (taskset -c), with
// the same arguments; it returns only on failure.
func pinSelf(cpus string, args []string) error {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{taskset, "-c", cpus, exe}, args...)
	return syscall.Exec(taskset, argv, append(os.Environ(), driverPinned+"="+strconv.Itoa(runtime.NumCPU())))
}

// machineCPUs is the number of CPUs of the machine, also when this
// process was pinned to fewer.
func machineCPUs() int {
	if n, err := strconv.Atoi(os.Getenv(driverPinned)); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// pinned is argv run on --server-cpus: prefixed with taskset -c, which
// runs the program in its own process (same PID), or argv as is without
// the flag.
func (o *options) pinned(argv ...string) []string {
	if o.serverCPUs == "" {
		return argv
	}
	return append([]string{"taskset", "-c", o.serverCPUs}, argv...)
}

// jsRun is what the run-jetstream mode prints: its jsResult.
type jsRun struct {
	Calls    int64 `json:"calls"`
	WindowNs int64 `json:"window_ns"`
	CPUNs    int64 `json:"cpu_ns"`
}

// jsRoundTripsIn runs the jetstream part as its own process (argv, this
// command's run-jetstream mode, pinned as asked, in env), with its store
// in dir, under cfg's sessions, rate, warm-up and window: a process like
// the other parts' servers, with its GC target from env.
func jsRoundTripsIn(ctx context.Context, argv, env []string, dir string, cfg bench.Config) (jsResult, error) {
	argv = append(argv, "run-jetstream", "--data", dir, "--sessions", strconv.Itoa(cfg.Sessions),
		"--rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64), "--warmup", cfg.Warmup.String(), "--duration", cfg.Duration.String())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return jsResult{}, fmt.Errorf("the jetstream part: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r jsRun
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return jsResult{}, fmt.Errorf("the jetstream part's result %q: %w", stdout.Bytes(), err)
	}
	res := jsResult{Calls: r.Calls, Window: time.Duration(r.WindowNs), CPU: time.Duration(r.CPUNs)}
	if res.Calls == 0 || res.Window <= 0 {
		return res, errors.New("the jetstream part made no call")
	}
	res.PerCall = res.CPU / time.Duration(res.Calls)
	return res, nil
}

// runJetStream is the harness re-executed as the jetstream part: it runs
// jsRoundTrips with its store in --data and prints the result as JSON
// (jsRun).
func runJetStream(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run-jetstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "JetStream store directory (required)")
	sessions := fs.Int("sessions", 64, "goroutines making calls, one at a time each")
	rate := fs.Float64("rate", 0, "calls/s over all goroutines (0: as fast as they go)")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up (not counted)")
	window := fs.Duration("duration", 10*time.Second, "measured window")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" || *sessions < 1 {
		fmt.Fprintln(stderr, "run-jetstream: --data and a positive --sessions are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := jsRoundTrips(ctx, *data, *sessions, *rate, *warmup, *window)
	if err != nil {
		fmt.Fprintf(stderr, "run-jetstream: %v\n", err)
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(jsRun{Calls: res.Calls, WindowNs: int64(res.Window), CPUNs: int64(res.CPU)})
	return 0
}
