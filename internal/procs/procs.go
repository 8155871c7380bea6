// Package procs runs a process on as many cores (GOMAXPROCS) as its load
// needs.
//
// At a low or moderate load the Go scheduler spends more CPU handing work
// between threads than doing it: a goroutine readied by another wakes an
// idle thread on another core, which spins looking for more and sleeps
// again. A call through mcpstream crosses a dozen such hand-offs (HTTP, the
// NATS connections, the stream, the worker, and back), so on the 2-core
// machine of docs/performance.md one session's calls through `mcpstream
// dev` took 0.29-0.34 ms and 324-371 us of CPU each with both cores, and
// 0.18-0.19 ms and 185-191 us with one.
//
// An [Adapter] therefore starts the process on one core, reads every
// Interval how long runnable goroutines waited for a core (the runtime's
// /sched/latencies, which samples one wait in 8), gives the process every
// core (Max) as soon as more than LateShare of the waits were longer than
// 250 us, and tries one core fewer once that many were enough for Hold. A
// try that proves too few (the waits grow again) doubles Hold, up to a
// minute, so a load that needs every core is disturbed for one reading a
// minute at most. What one core costs is the tail at a moderate load: a
// long piece of work (a collection, a file write) holds up every other,
// where a second core would have gone on (p99 4 -> 6-7 ms at 1,000 calls/s
// on that machine).
package procs

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/mcpstream/mcpstream/internal/schedwait"
)

const (
	// lateAfter is a scheduling wait that says goroutines queue for a
	// core.
	lateAfter = 250 * time.Microsecond
	// minWaits is the fewest (sampled) waits in a reading that say
	// anything: an idle process is not short of cores.
	minWaits = 50
	// maxHold bounds Hold as tries that prove too few double it.
	maxHold = time.Minute
)

// Adapter sets GOMAXPROCS between 1 and Max by the load. Its zero value
// works.
type Adapter struct {
	// Max is the most cores (default: GOMAXPROCS when Run starts, what
	// the runtime chose from the machine and the container's CPU limit).
	Max int
	// Interval is how often the waits are read (default 100ms): the
	// longest a load that needs more cores runs short of them.
	Interval time.Duration
	// LateShare is the share of waits longer than 250 us over a reading
	// beyond which the process gets every core (default 0.08). One session
	// making call after call sees 1-2% on one core; 64 sessions at once,
	// enough to saturate two cores, 11-12%.
	LateShare float64
	// Hold is how long the cores must have been enough before one fewer
	// is tried (default 2s).
	Hold time.Duration
	// Log, if set, gets a debug line at each change.
	Log *slog.Logger
}

// Run adapts GOMAXPROCS until ctx ends, then gives it back to the runtime
// (runtime.SetDefaultGOMAXPROCS), which follows the container's CPU limit
// again; while Run adapts, a change of that limit is not followed. With
// Max 1 (one core, or a container limited to one) it returns at once.
func (a *Adapter) Run(ctx context.Context) {
	d := a.decider()
	if d.max <= 1 {
		return
	}
	interval := a.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	runtime.GOMAXPROCS(d.n)
	defer runtime.SetDefaultGOMAXPROCS()
	var w schedwait.Watch
	w.Next()
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			win := w.Next()
			waits := win.Total()
			late := 0.0
			if waits > 0 {
				late = float64(win.Over(lateAfter)) / float64(waits)
			}
			before := d.n
			if d.next(late, waits, now.Sub(last)) != before {
				runtime.GOMAXPROCS(d.n)
				if a.Log != nil {
					a.Log.Debug("cores adapted", "gomaxprocs", d.n, "late_share", late, "waits", waits, "hold", d.hold)
				}
			}
			last = now
		}
	}
}

// decider is the Adapter's state, starting on one core.
func (a *Adapter) decider() *decider {
	d := &decider{max: a.Max, n: 1, share: a.LateShare, hold: a.Hold}
	if d.max <= 0 {
		d.max = runtime.GOMAXPROCS(0)
	}
	if d.share <= 0 {
		d.share = 0.08
	}
	if d.hold <= 0 {
		d.hold = 2 * time.Second
	}
	return d
}

// decider chooses the cores reading by reading.
type decider struct {
	max, n int
	share  float64
	// quiet is how long n cores have been enough; hold how long that must
	// be before n-1 are tried; trying is set while they are.
	quiet, hold time.Duration
	trying      bool
}

// next returns the cores for the next reading, given the last one's share
// of late waits (of waits in all, over dt).
func (d *decider) next(late float64, waits uint64, dt time.Duration) int {
	if waits >= minWaits && late > d.share {
		if d.trying { // one fewer was too few: wait longer before the next try
			d.hold = min(2*d.hold, maxHold)
		}
		d.n, d.quiet, d.trying = d.max, 0, false
		return d.n
	}
	d.quiet += dt
	if d.quiet < d.hold {
		return d.n
	}
	d.trying = false // a try that lasted hold held
	if d.n > 1 {
		d.n--
		d.quiet, d.trying = 0, true
	}
	return d.n
}
