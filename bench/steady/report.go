package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// report is what a run measured.
type report struct {
	Command     []string    `json:"command"`
	Environment environment `json:"environment"`
	Tool        string      `json:"tool"`
	Sessions    int         `json:"sessions"`
	Rate        float64     `json:"rate"`
	// GCPercent is the --gc-percent every process got (-1: its own, 400).
	GCPercent int        `json:"gc_percent"`
	Interval  float64    `json:"interval_s"`
	Tiers     []tierInfo `json:"tiers"`
	// Before is the last sample before the load, Samples those during it.
	Before  point   `json:"before"`
	Samples []point `json:"samples"`
	// The load's outcome.
	Throughput float64 `json:"calls_per_s"`
	OK         int64   `json:"ok"`
	Errors     int64   `json:"errors"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
}

// tierInfo is one process and what it held.
type tierInfo struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// MemoryLimit is the limit the process printed it runs with.
	MemoryLimit string `json:"memory_limit"`
	// BeforeMiB, PlateauMiB (the median of the last third of the samples)
	// and MaxMiB are its RSS.
	BeforeMiB  float64 `json:"before_mib"`
	PlateauMiB float64 `json:"plateau_mib"`
	MaxMiB     float64 `json:"max_mib"`
	// PerKiloMiB is (plateau - before) per 1,000 calls/s.
	PerKiloMiB float64 `json:"mib_per_1000_calls_s"`
	// CPUPerCallUs is the process's CPU a call over the run.
	CPUPerCallUs float64 `json:"cpu_us_per_call"`
}

// point is one sample: when (seconds since the load began), each tier's
// RSS in bytes, and the load average.
type point struct {
	At   float64 `json:"t_s"`
	RSS  []int64 `json:"rss"`
	Load string  `json:"loadavg"`
}

// environment is where the harness ran.
type environment struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
}

func currentEnvironment() environment {
	return environment{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// line prints s as a progress line.
func (s point) line(tiers []tierInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.0fs", s.At)
	for i, t := range tiers {
		fmt.Fprintf(&b, "  %s %6.1f MiB", t.Name, mib(s.RSS[i]))
	}
	fmt.Fprintf(&b, "  load %s", s.Load)
	return b.String()
}

// finish fills the summary from the load's result and the tiers' CPU
// times after and before it.
func (r *report) finish(res *bench.Result, after, before []time.Duration) {
	r.Throughput, r.OK, r.Errors = res.Throughput, res.OK, res.ErrorCount()
	r.P50Ms, r.P99Ms = res.P50.Seconds()*1e3, res.P99.Seconds()*1e3
	for i := range r.Tiers {
		t := &r.Tiers[i]
		var series []int64
		for _, s := range r.Samples {
			series = append(series, s.RSS[i])
		}
		if len(series) == 0 {
			continue
		}
		t.BeforeMiB = mib(r.Before.RSS[i])
		last := slices.Clone(series[len(series)-max(1, len(series)/3):])
		slices.Sort(last)
		t.PlateauMiB = mib(last[len(last)/2])
		t.MaxMiB = mib(slices.Max(series))
		if r.Throughput > 0 {
			t.PerKiloMiB = (t.PlateauMiB - t.BeforeMiB) / (r.Throughput / 1000)
			if after[i] > 0 && before[i] >= 0 && res.OK > 0 {
				t.CPUPerCallUs = float64((after[i] - before[i]).Microseconds()) / float64(res.OK)
			}
		}
	}
}

// write prints the samples and the summary.
func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "%s\n", strings.Join(r.Command, " "))
	gc := "each process's own (400 unless GOGC is set)"
	if r.GCPercent >= 0 {
		gc = fmt.Sprint(r.GCPercent)
	}
	load := fmt.Sprintf("%d closed-loop sessions", r.Sessions)
	if r.Rate > 0 {
		load = fmt.Sprintf("open loop at %.0f calls/s", r.Rate)
	}
	fmt.Fprintf(w, "%s, %s, %d CPUs, %s/%s; %s; GC target %s\n\n", load, r.Tool, r.Environment.CPUs, r.Environment.GoVersion, r.Environment.GOARCH,
		"the driver on the same machine", gc)
	fmt.Fprintf(w, "%8s", "t")
	for _, t := range r.Tiers {
		fmt.Fprintf(w, "  %12s", t.Name+" MiB")
	}
	fmt.Fprintf(w, "  %s\n", "load average")
	for _, s := range append([]point{r.Before}, r.Samples...) {
		fmt.Fprintf(w, "%7.0fs", s.At)
		for i := range r.Tiers {
			fmt.Fprintf(w, "  %12.1f", mib(s.RSS[i]))
		}
		fmt.Fprintf(w, "  %s\n", s.Load)
	}
	fmt.Fprintf(w, "\n%.0f calls/s (%d ok, %d failed), p50 %.2f ms, p99 %.2f ms\n", r.Throughput, r.OK, r.Errors, r.P50Ms, r.P99Ms)
	fmt.Fprintf(w, "%-8s %-28s %10s %11s %10s %18s %14s\n", "process", "memory limit", "before", "plateau", "max", "MiB per 1K calls/s", "CPU us a call")
	for _, t := range r.Tiers {
		fmt.Fprintf(w, "%-8s %-28s %6.1f MiB %7.1f MiB %6.1f MiB %18.1f %14.1f\n", t.Name, t.MemoryLimit, t.BeforeMiB, t.PlateauMiB, t.MaxMiB, t.PerKiloMiB, t.CPUPerCallUs)
	}
}
