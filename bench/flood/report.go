package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// verdict is what the run shows: quiet's p99 under the flood over its
// baseline p99, and whether that passes.
type verdict struct {
	// Ratios are quiet's p99 under the flood (rate limit on) over its
	// baseline p99, a round each (0 where either served no call); Ratio is
	// their median.
	Ratios []float64 `json:"p99_ratios"`
	Ratio  float64   `json:"p99_ratio"`
	// UnlimitedRatio is quiet's p99 under the flood without the rate
	// limit over the median baseline p99 (0 when not run): the contrast.
	UnlimitedRatio float64 `json:"p99_ratio_unlimited,omitempty"`
	MaxRatio       float64 `json:"max_ratio"`
	Pass           bool    `json:"pass"`
	// Failures say why the run did not pass.
	Failures []string `json:"failures,omitempty"`
}

// judge compares the phases: the run passes when the median over the
// rounds of quiet's p99 under the flood over its baseline p99 is at most
// o.maxRatio, quiet saw no error while the rate limit held, and every
// flood was admitted at the limit: refused with 429 or held to the rate,
// never above it (and never below, else the limit was not put to the
// test).
func judge(o *options, phases []*phase) verdict {
	v := verdict{MaxRatio: o.maxRatio}
	var baseP99 []time.Duration
	for _, base := range phases {
		if base.Name != phaseBaseline {
			continue
		}
		baseP99 = append(baseP99, base.Quiet.P99)
		flooded := find(phases, phaseFlood, base.Round)
		if flooded == nil {
			continue
		}
		ratio, err := p99Ratio(base.Quiet, flooded.Quiet)
		if err != nil {
			v.Failures = append(v.Failures, fmt.Sprintf("round %d: %v", base.Round, err))
		}
		v.Ratios = append(v.Ratios, ratio)
	}
	if len(v.Ratios) == 0 {
		v.Failures = append(v.Failures, "no round has both a baseline and a flood")
		return v
	}
	if v.Ratio = median(v.Ratios); v.Ratio > o.maxRatio {
		v.Failures = append(v.Failures, fmt.Sprintf("quiet's p99 under the flood is %.2fx its baseline, more than %gx", v.Ratio, o.maxRatio))
	}
	for _, ph := range phases {
		if !ph.Limited {
			continue
		}
		if n := ph.Quiet.ErrorCount(); n > 0 {
			v.Failures = append(v.Failures, fmt.Sprintf("quiet saw %d errors in phase %q, round %d (%s)", n, ph.Name, ph.Round, bench.FormatCounts(ph.Quiet.Errors)))
		}
		if ph.Flood == nil {
			continue
		}
		// A flood is limited by refusals (429) or, with the server's
		// --principal-rate-hold, by holding its calls until their tokens:
		// either way it is admitted at the rate, plus the burst once.
		refused := ph.Flood.Errors[bench.KindHTTP429]
		switch ceiling := o.rate*1.1 + float64(o.burst)/o.duration.Seconds(); {
		case refused == 0 && ph.Flood.Throughput < 0.9*o.rate:
			v.Failures = append(v.Failures, fmt.Sprintf("round %d: the flood was never refused with 429 and never reached the limit (%.0f/s admitted): the rate limit was not put to the test", ph.Round, ph.Flood.Throughput))
		case ph.Flood.Throughput > ceiling:
			v.Failures = append(v.Failures, fmt.Sprintf("round %d: the flood was admitted at %.0f/s, beyond the limit of %g/s", ph.Round, ph.Flood.Throughput, o.rate))
		}
	}
	if un := find(phases, phaseUnlimited, 1); un != nil && un.Quiet.OK > 0 {
		if b := medianDuration(baseP99); b > 0 {
			v.UnlimitedRatio = float64(un.Quiet.P99) / float64(b)
		}
	}
	v.Pass = len(v.Failures) == 0
	return v
}

// find is the phase of that name and round, or nil.
func find(phases []*phase, name string, round int) *phase {
	for _, ph := range phases {
		if ph.Name == name && ph.Round == round {
			return ph
		}
	}
	return nil
}

// p99Ratio is the p99 of other over that of base.
func p99Ratio(base, other *bench.Result) (float64, error) {
	if base == nil || other == nil || base.OK == 0 || other.OK == 0 || base.P99 <= 0 {
		return 0, fmt.Errorf("no p99 to compare: a phase served no call")
	}
	return float64(other.P99) / float64(base.P99), nil
}

// median is the median of xs (the mean of the middle two for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianDuration is the median of ds.
func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

// describeLoad is a result's load in a few words.
func describeLoad(r *bench.Result) string {
	if r.Config.Rate > 0 {
		return fmt.Sprintf("open %g/s, %d sessions", r.Config.Rate, r.Config.Sessions)
	}
	return fmt.Sprintf("closed, %d sessions", r.Config.Sessions)
}

// machine describes where the run ran.
func machine(o *options) string {
	where := fmt.Sprintf("driver and server share the %d CPUs", runtime.NumCPU())
	if o.serverCPUs != "" {
		where = fmt.Sprintf("server on CPUs %s, driver on %d CPU(s)", o.serverCPUs, runtime.NumCPU())
	}
	return fmt.Sprintf("%s, %s, server GOGC=%d", runtime.Version(), where, o.gogc)
}

// writeReport prints a row per principal and phase, then the verdict.
// load is the machine's load average before and after the run.
func writeReport(w io.Writer, o *options, phases []*phase, v verdict, load [2]string) {
	driver := "a child process"
	if o.inProcess {
		driver = "the harness's process (beside quiet's)"
	}
	fmt.Fprintf(w, "\nworkload: tool echo, principals by %s, rate limit %g calls/s burst %d per principal; %s measured after %s warm-up each phase; the flood driven from %s\n",
		o.auth, o.rate, o.burst, o.duration, o.warmup, driver)
	fmt.Fprintf(w, "machine: %s", machine(o))
	if load[0] != "" {
		fmt.Fprintf(w, "; load average %s before, %s after", load[0], load[1])
	}
	fmt.Fprint(w, "\n")
	if busy(load) {
		fmt.Fprintf(w, "note: the load average exceeded the %d CPUs: other work shared the machine, and moves the baseline as much as the flood does\n", runtime.NumCPU())
	}
	fmt.Fprint(w, "\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tprincipal\tload\tcalls\tok/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t429s\t429 p50 ms\t429 p99 ms\tother errors\tserver cores\t")
	for _, ph := range phases {
		for _, r := range []*bench.Result{ph.Quiet, ph.Flood} {
			if r == nil {
				continue
			}
			principal := quietPrincipal
			if r == ph.Flood {
				principal = floodPrincipal
			}
			n429 := r.Errors[bench.KindHTTP429]
			other := map[string]int{}
			for k, n := range r.Errors {
				if k != bench.KindHTTP429 {
					other[k] = n
				}
			}
			cores := "-"
			if r.ServerCPU > 0 {
				cores = fmt.Sprintf("%.2f", r.ServerCores())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", phaseLabel(o, ph), principal, describeLoad(r),
				r.Calls, r.Throughput, bench.FormatMS(r.P50), bench.FormatMS(r.P99), bench.FormatMS(r.P999), bench.FormatMS(r.Max),
				n429, bench.FormatMS(r.RefusedP50), bench.FormatMS(r.RefusedP99), bench.FormatCounts(other), cores)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, ph := range phases {
		if ph.Name != phaseFlood || ph.Flood == nil {
			continue
		}
		f := ph.Flood
		fmt.Fprintf(w, "%sflood: %.0f calls/s offered, %.0f/s admitted (limit %g/s) in p50 %s ms, p99 %s ms, %.0f/s refused with 429 in p50 %s ms, p99 %s ms\n",
			roundPrefix(o, ph), f.Offered, f.Throughput, o.rate, bench.FormatMS(f.P50), bench.FormatMS(f.P99),
			float64(f.Errors[bench.KindHTTP429])/f.Config.Duration.Seconds(), bench.FormatMS(f.RefusedP50), bench.FormatMS(f.RefusedP99))
		if base := find(phases, phaseBaseline, ph.Round); base != nil && base.Quiet != nil && ph.Quiet != nil {
			ratio, _ := p99Ratio(base.Quiet, ph.Quiet)
			fmt.Fprintf(w, "%squiet p99: baseline %s ms, under the flood %s ms: %.2fx\n",
				roundPrefix(o, ph), bench.FormatMS(base.Quiet.P99), bench.FormatMS(ph.Quiet.P99), ratio)
		}
	}
	verdict := "pass"
	if !v.Pass {
		verdict = "FAIL"
	}
	what := "quiet's p99 under the flood over its baseline"
	if len(v.Ratios) > 1 {
		what = fmt.Sprintf("the median of %d rounds' ratios", len(v.Ratios))
	}
	fmt.Fprintf(w, "%s: %.2fx (max %gx): %s\n", what, v.Ratio, o.maxRatio, verdict)
	if un := find(phases, phaseUnlimited, 1); un != nil && un.Flood != nil {
		fmt.Fprintf(w, "without the rate limit: the flood had %.0f calls/s served, quiet's p99 %s ms: %.2fx the baseline (contrast, not judged)\n",
			un.Flood.Throughput, bench.FormatMS(un.Quiet.P99), v.UnlimitedRatio)
	}
	for _, f := range v.Failures {
		fmt.Fprintf(w, "fail: %s\n", f)
	}
}

// busy reports whether a load average (before or after the run) exceeded
// the CPU count.
func busy(load [2]string) bool {
	for _, l := range load {
		if v, err := strconv.ParseFloat(l, 64); err == nil && v > float64(runtime.NumCPU()) {
			return true
		}
	}
	return false
}

// phaseLabel is the phase's name, with its round when there are several.
func phaseLabel(o *options, ph *phase) string {
	if o.rounds > 1 && ph.Limited {
		return fmt.Sprintf("%s %d", ph.Name, ph.Round)
	}
	return ph.Name
}

// roundPrefix names the phase's round when there are several.
func roundPrefix(o *options, ph *phase) string {
	if o.rounds > 1 {
		return fmt.Sprintf("round %d: ", ph.Round)
	}
	return ""
}

// writeJSON writes the run as one JSON object: the machine, the options,
// every phase's results (latencies in ms) and the verdict.
func writeJSON(w io.Writer, o *options, phases []*phase, v verdict, load [2]string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		GoVersion     string   `json:"go_version"`
		CPUs          int      `json:"cpus"`
		ServerCPUs    string   `json:"server_cpus,omitempty"`
		GOGC          int      `json:"server_gogc"`
		LoadBefore    string   `json:"load_before,omitempty"`
		LoadAfter     string   `json:"load_after,omitempty"`
		Auth          string   `json:"auth"`
		Rate          float64  `json:"rate"`
		Burst         int      `json:"burst"`
		QuietRate     float64  `json:"quiet_rate"`
		FloodRate     float64  `json:"flood_rate"`
		FloodSessions int      `json:"flood_sessions"`
		Rounds        int      `json:"rounds"`
		InProcess     bool     `json:"flood_in_process"`
		DurationMS    float64  `json:"duration_ms"`
		Phases        []*phase `json:"phases"`
		Verdict       verdict  `json:"verdict"`
	}{runtime.Version(), runtime.NumCPU(), o.serverCPUs, o.gogc, load[0], load[1], o.auth, o.rate, o.burst, o.quietRate, o.floodRate,
		o.floodSessions, o.rounds, o.inProcess, float64(o.duration) / float64(time.Millisecond), phases, v})
}
