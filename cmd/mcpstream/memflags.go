package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/mcpstream/mcpstream/internal/memlimit"
)

// devMemoryLimit is dev's memory limit where neither the flag, GOMEMLIMIT
// nor a container sets one: dev runs the NATS server, a gateway and the
// workers in one process on a laptop, and at 8,000 calls/s it holds about
// 130 MB live (docs/performance.md#memory-at-a-steady-rate); 400 MiB
// leaves the collector three times that.
const devMemoryLimit = 400 << 20

// memoryUsage is the help of --memory-limit for gateway and worker.
const memoryUsage = "soft limit of the Go runtime's memory (heap, stacks, runtime): near it the collector runs more often than --gc-percent asks, so the process stays within it unless that much is live; a size (512MiB, 2GiB), a share of the container's memory limit (80%), or off (default GOMEMLIMIT when set, else 80% of the container's cgroup memory limit, else none)"

// devMemoryUsage is its help for dev, whose default without a container
// limit is devMemoryLimit.
var devMemoryUsage = "soft limit of the Go runtime's memory (heap, stacks, runtime): near it the collector runs more often than --gc-percent asks, so the process stays within it unless that much is live; a size (512MiB, 2GiB), a share of the container's memory limit (80%), or off (default GOMEMLIMIT when set, else 80% of the container's cgroup memory limit, else " + memlimit.FormatBytes(devMemoryLimit) + ")"

// memoryFlag is --memory-limit (dev, gateway, worker).
type memoryFlag struct{ spec memlimit.Spec }

func (m *memoryFlag) String() string { return m.spec.String() }

func (m *memoryFlag) Set(v string) error {
	s, err := memlimit.ParseSpec(v)
	if err != nil {
		return err
	}
	m.spec = s
	return nil
}

func (m *memoryFlag) register(fs *flag.FlagSet, usage string) { fs.Var(m, "memory-limit", usage) }

// memoryEnv is where apply looks: the process's environment and cgroup.
type memoryEnv struct {
	lookup     func(string) (string, bool)
	cgroupRoot string // "/" but in tests
}

// apply chooses the process's memory limit (memlimit.Choose, fallback
// being the command's default, 0 for none), sets it, and says which it is
// on stdout and in the log. It returns an error for a percentage without a
// container limit.
func (m *memoryFlag) apply(log *slog.Logger, stdout io.Writer, fallback int64, env memoryEnv) (memlimit.Limit, error) {
	l, err := memlimit.Choose(m.spec, fallback, memlimit.Env{Lookup: env.lookup,
		Cgroup: func() (int64, string, error) { return memlimit.CgroupLimit(env.cgroupRoot) }})
	if err != nil {
		return l, err
	}
	inForce := memlimit.Apply(l)
	if inForce == 0 {
		fmt.Fprintf(stdout, "mcpstream: Go memory limit none (%s)\n", l.Source)
	} else {
		fmt.Fprintf(stdout, "mcpstream: Go memory limit %s (%s)\n", memlimit.FormatBytes(inForce), l.Source)
	}
	log.Debug("memory limit", "bytes", inForce, "source", l.Source, "container", l.Container)
	return l, nil
}
