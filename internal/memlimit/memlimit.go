// Package memlimit chooses and applies the Go soft memory limit of a
// long-running command (runtime/debug.SetMemoryLimit): from a flag, from
// GOMEMLIMIT, from the memory limit of the container's cgroup (v2
// memory.max, v1 memory.limit_in_bytes), or from a command's own default.
//
// Under the limit the garbage collector runs at its GC target (GOGC; the
// mcpstream commands set 400); near the limit it collects more often, so
// the heap does not grow to five times what is live and a container is not
// killed for memory the process did not need. The limit is soft: live
// memory beyond it is kept, and the collector then spends at most about
// half the CPU trying.
package memlimit

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultContainerShare is the share of the container's memory limit that
// the Go limit takes by default: the rest is for what the Go runtime does
// not count (the kernel's socket buffers, file pages charged to the
// cgroup, memory mapped by the NATS server's file store).
const DefaultContainerShare = 0.8

// Spec is a --memory-limit value as given.
type Spec struct {
	// Set tells the flag was given (else the default applies).
	Set bool
	// Off: no limit, even if GOMEMLIMIT or a container sets one.
	Off bool
	// Bytes is an absolute limit (when Percent is 0).
	Bytes int64
	// Percent is a limit as a percentage of the container's memory limit.
	Percent float64
}

// String prints s as [ParseSpec] reads it ("" when not set).
func (s Spec) String() string {
	switch {
	case !s.Set:
		return ""
	case s.Off:
		return "off"
	case s.Percent > 0:
		return strconv.FormatFloat(s.Percent, 'g', -1, 64) + "%"
	}
	return FormatBytes(s.Bytes)
}

// units are the size suffixes ParseSpec takes, longest first.
var units = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSpec reads a --memory-limit value: "off" (or "0": no limit), a size
// in bytes with an optional unit as GOMEMLIMIT spells them (B, KiB, MiB,
// GiB, TiB) or in powers of ten (KB, MB, GB, TB), or a percentage of the
// container's memory limit ("75%"). "" is the default. It returns an
// error naming what it could not read.
func ParseSpec(v string) (Spec, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return Spec{}, nil
	case v == "off" || v == "0":
		return Spec{Set: true, Off: true}, nil
	case strings.HasSuffix(v, "%"):
		p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "%")), 64)
		if err != nil || p <= 0 || p > 100 || math.IsNaN(p) {
			return Spec{}, fmt.Errorf("memory limit %q: a percentage must be in (0, 100]", v)
		}
		return Spec{Set: true, Percent: p}, nil
	}
	num, mult := v, 1.0
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return Spec{}, fmt.Errorf("memory limit %q: want off, a size such as 512MiB or 2GiB, or a percentage of the container's limit such as 80%%", v)
	}
	b := f * mult
	if b >= math.MaxInt64 {
		return Spec{}, fmt.Errorf("memory limit %q: too large", v)
	}
	if b < 1 {
		return Spec{Set: true, Off: true}, nil
	}
	return Spec{Set: true, Bytes: int64(b)}, nil
}

// FormatBytes prints b in the largest binary unit that divides it
// (512MiB), else in bytes.
func FormatBytes(b int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b >= u.m && b%u.m == 0 {
			return strconv.FormatInt(b/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(b, 10) + "B"
}

// Limit is a chosen memory limit and where it came from.
type Limit struct {
	// Bytes is the limit; 0 sets none (math.MaxInt64 to the runtime).
	Bytes int64
	// Source says where Bytes came from: "--memory-limit", "GOMEMLIMIT",
	// "cgroup v2", "cgroup v1", "default" or "none".
	Source string
	// Container is the container's memory limit (0: none found).
	Container int64
}

// Env is what Choose reads from the environment and the machine.
type Env struct {
	// Lookup reads an environment variable (os.LookupEnv).
	Lookup func(string) (string, bool)
	// Cgroup returns the container's memory limit and its cgroup version
	// ("cgroup v2" or "cgroup v1"), 0 without one ([CgroupLimit]).
	Cgroup func() (int64, string, error)
}

// Choose picks the limit of a command from spec (its --memory-limit), in
// this order: the flag when given; GOMEMLIMIT when set (the runtime took it
// at start; Choose leaves it); [DefaultContainerShare] of the container's
// memory limit; fallback, the command's own default (0: none). It returns
// an error for a percentage without a container limit, or for a cgroup
// that could not be read when the flag needs it.
func Choose(spec Spec, fallback int64, env Env) (Limit, error) {
	var container int64
	var version string
	var cerr error
	if env.Cgroup != nil {
		container, version, cerr = env.Cgroup()
	}
	switch {
	case spec.Off:
		return Limit{Source: "--memory-limit", Container: container}, nil
	case spec.Set && spec.Percent > 0:
		if cerr != nil {
			return Limit{}, fmt.Errorf("--memory-limit %s: reading the container's memory limit: %w", spec, cerr)
		}
		if container == 0 {
			return Limit{}, fmt.Errorf("--memory-limit %s: no container memory limit found (cgroup v2 memory.max or v1 memory.limit_in_bytes)", spec)
		}
		return Limit{Bytes: int64(float64(container) * spec.Percent / 100), Source: "--memory-limit", Container: container}, nil
	case spec.Set:
		return Limit{Bytes: spec.Bytes, Source: "--memory-limit", Container: container}, nil
	}
	if env.Lookup != nil {
		if v, ok := env.Lookup("GOMEMLIMIT"); ok && strings.TrimSpace(v) != "" {
			return Limit{Bytes: current(), Source: "GOMEMLIMIT", Container: container}, nil
		}
	}
	if container > 0 {
		return Limit{Bytes: int64(float64(container) * DefaultContainerShare), Source: version, Container: container}, nil
	}
	if fallback > 0 {
		return Limit{Bytes: fallback, Source: "default"}, nil
	}
	return Limit{Source: "none"}, nil
}

// current is the runtime's memory limit now, 0 for none.
func current() int64 {
	if v := debug.SetMemoryLimit(-1); v != math.MaxInt64 {
		return v
	}
	return 0
}

// Apply sets l as the runtime's soft memory limit (none for 0) unless it
// came from GOMEMLIMIT, which the runtime applied itself, and returns the
// limit in force.
func Apply(l Limit) int64 {
	if l.Source != "GOMEMLIMIT" {
		v := l.Bytes
		if v <= 0 {
			v = math.MaxInt64
		}
		debug.SetMemoryLimit(v)
	}
	return current()
}
