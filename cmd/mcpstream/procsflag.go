package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/mcpstream/mcpstream/internal/procs"
)

// procsUsage is the help of --adapt-procs.
const procsUsage = "run on as few cores as the load needs (GOMAXPROCS from 1 up to the machine's or the container's, read every 100ms, all of them as soon as goroutines queue for one): with few sessions a call takes less time and CPU, at a moderate load less CPU for a longer tail (p99 4 -> 6-7 ms at 1,000 calls/s on 2 cores); off by default but in dev, and when GOMAXPROCS is set"

// procsFlag is --adapt-procs (dev, gateway, worker): on by default in dev,
// whose single process serves one developer's few sessions, where it
// halves a call's latency and CPU; off in gateway and worker, whose
// operators would not want a longer tail at a moderate load without
// asking for it (docs/performance.md#adaptive-cores-2026-12-06).
type procsFlag struct{ adapt bool }

func (p *procsFlag) register(fs *flag.FlagSet, on bool) {
	fs.BoolVar(&p.adapt, "adapt-procs", on, procsUsage)
}

// start runs a procs.Adapter, when enabled, until the stop it returns is
// called, which waits for it to end (and GOMAXPROCS to be every core
// again).
func (p *procsFlag) start(log *slog.Logger, lookup func(string) (string, bool)) (stop func()) {
	if !p.enabled(log, lookup) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&procs.Adapter{Log: log}).Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// enabled reports whether the cores are adapted: not when the flag is
// false, nor when GOMAXPROCS is set (lookup reads the environment).
func (p *procsFlag) enabled(log *slog.Logger, lookup func(string) (string, bool)) bool {
	if !p.adapt {
		return false
	}
	if v, ok := lookup("GOMAXPROCS"); ok && v != "" {
		log.Info("cores not adapted: GOMAXPROCS is set", "gomaxprocs", v)
		return false
	}
	return true
}
