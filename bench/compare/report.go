package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// run is one measured run: a target at a GC target in a round.
type run struct {
	Round  int    `json:"round"`
	Target string `json:"target"`
	// GOGC is the GC target set in the server's environment.
	GOGC int `json:"gogc"`
	// ReportedGOGC is the GC target the server said its runtime took (the
	// plain servers say; mcpstream does not).
	ReportedGOGC *int `json:"reported_gogc,omitempty"`
	// Response is the media type of the server's response to a tools/call:
	// application/json or text/event-stream.
	Response string        `json:"response"`
	Result   *bench.Result `json:"result"`
}

// report is a run of the harness: its workload, settings, runs and their
// summary.
type report struct {
	Workload workload `json:"workload"`
	// Environment is the machine and the driver.
	Environment environment `json:"environment"`
	// Notes say what the figures measure, as the tables print them.
	Notes []string `json:"notes"`
	// Settings is the summary of each GC setting.
	Settings []settingSummary `json:"settings"`
	// Runs are every run, in the order they ran.
	Runs     []*run    `json:"runs"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`

	opts *options
}

// workload is the load every run applies.
type workload struct {
	Mode       string          `json:"mode"` // "closed loop" or "open loop"
	Sessions   int             `json:"sessions"`
	Rate       float64         `json:"rate,omitempty"`
	Tool       string          `json:"tool"`
	Args       json.RawMessage `json:"args"`
	WarmupMS   float64         `json:"warmup_ms"`
	DurationMS float64         `json:"duration_ms"`
	Rounds     int             `json:"rounds"`
	Targets    []string        `json:"targets"`
	// CommonGOGC is the GC target of every server in the "same" setting.
	CommonGOGC int `json:"common_gogc"`
}

// settingSummary is one GC setting's figures.
type settingSummary struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// GOGC is each target's GC target.
	GOGC map[string]int `json:"gogc"`
	Rows []row          `json:"targets"`
}

// row is one target's figures under a setting, over the rounds.
type row struct {
	Target string `json:"target"`
	GOGC   int    `json:"gogc"`
	// Response is the response media type(s) the server chose.
	Response   string         `json:"response"`
	Rounds     []int          `json:"rounds"`
	Throughput spread         `json:"calls_per_s"`
	P50        spread         `json:"p50_ms"`
	P90        spread         `json:"p90_ms"`
	P99        spread         `json:"p99_ms"`
	P999       spread         `json:"p999_ms"`
	Errors     int64          `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// ServerUS is the server's CPU time a call, in microseconds; zero
	// where not measured.
	ServerUS spread `json:"server_us_per_call"`
	// Ratio is mcpstream's throughput over this target's, taken within
	// each round; CPURatio mcpstream's server CPU a call over this
	// target's. Nil without an mcpstream run to compare with.
	Ratio    *spread `json:"mcpstream_over_target_calls_per_s,omitempty"`
	CPURatio *spread `json:"mcpstream_over_target_cpu_per_call,omitempty"`
}

// spread is a figure over the rounds: its values in round order, their
// median, minimum and maximum.
type spread struct {
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

func spreadOf(vs []float64) spread {
	s := spread{Values: vs}
	if len(vs) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(vs))
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

func newReport(o *options) *report {
	mode := "closed loop"
	if o.cfg.Rate > 0 {
		mode = "open loop"
	}
	return &report{
		Workload: workload{Mode: mode, Sessions: o.cfg.Sessions, Rate: o.cfg.Rate, Tool: o.cfg.Tool, Args: o.cfg.Args,
			WarmupMS: float64(o.cfg.Warmup) / 1e6, DurationMS: float64(o.cfg.Duration) / 1e6,
			Rounds: o.rounds, Targets: o.targets, CommonGOGC: o.gogc},
		Environment: currentEnvironment(),
		Started:     time.Now(),
		opts:        o,
	}
}

// finish summarises the runs so far.
func (rep *report) finish() {
	rep.Finished = time.Now()
	rep.Settings = nil
	for _, s := range rep.opts.settings {
		rep.Settings = append(rep.Settings, summarize(s, rep.opts.targets, rep.Runs))
	}
	rep.Notes = rep.notes()
}

// summarize is the figures of setting s: for each target, its runs at the
// GC target s gives it.
func summarize(s setting, targets []string, runs []*run) settingSummary {
	sum := settingSummary{Name: s.name, Title: s.title(targets), GOGC: s.gogc}
	of := func(target string) map[int]*run {
		byRound := map[int]*run{}
		for _, r := range runs {
			if r.Target == target && r.GOGC == s.gogc[target] && r.Result != nil {
				byRound[r.Round] = r
			}
		}
		return byRound
	}
	ref := of("mcpstream")
	for _, n := range targets {
		byRound := of(n)
		rw := row{Target: n, GOGC: s.gogc[n]}
		var tput, p50, p90, p99, p999, sus, ratio, cpuRatio []float64
		responses := map[string]bool{}
		for _, r := range slices.Sorted(maps.Keys(byRound)) {
			rn := byRound[r]
			res := rn.Result
			rw.Rounds = append(rw.Rounds, r)
			responses[rn.Response] = true
			tput = append(tput, res.Throughput)
			p50, p90 = append(p50, msOf(res.P50)), append(p90, msOf(res.P90))
			p99, p999 = append(p99, msOf(res.P99)), append(p999, msOf(res.P999))
			sus = append(sus, usOf(res.ServerPerCall()))
			rw.Errors += res.ErrorCount()
			for k, v := range res.Errors {
				if rw.ErrorKinds == nil {
					rw.ErrorKinds = map[string]int{}
				}
				rw.ErrorKinds[k] += v
			}
			if m := ref[r]; m != nil {
				if res.Throughput > 0 {
					ratio = append(ratio, m.Result.Throughput/res.Throughput)
				}
				if mc, c := m.Result.ServerPerCall(), res.ServerPerCall(); mc > 0 && c > 0 {
					cpuRatio = append(cpuRatio, float64(mc)/float64(c))
				}
			}
		}
		rw.Response = strings.Join(slices.Sorted(maps.Keys(responses)), ", ")
		rw.Throughput, rw.P50, rw.P90, rw.P99, rw.P999 = spreadOf(tput), spreadOf(p50), spreadOf(p90), spreadOf(p99), spreadOf(p999)
		rw.ServerUS = spreadOf(sus)
		if len(ratio) > 0 {
			sp := spreadOf(ratio)
			rw.Ratio = &sp
		}
		if len(cpuRatio) > 0 {
			sp := spreadOf(cpuRatio)
			rw.CPURatio = &sp
		}
		sum.Rows = append(sum.Rows, rw)
	}
	return sum
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func usOf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// notes are the lines that say what the figures measure.
func (rep *report) notes() []string {
	o := rep.opts
	var notes []string
	if o.cfg.Tool == "echo" {
		notes = append(notes, "tool: echo is read-only (readOnlyHint), mcpstream's cheapest path: "+
			"its worker writes no result to the result bucket; a tool that may not run twice costs more (--tool increment)")
	}
	if o.cfg.Tool == "increment" {
		notes = append(notes, "tool: increment is neither read-only nor idempotent: mcpstream's worker claims each call in the result bucket "+
			"and stores its result there, so a redelivered call is answered from it, not run again; mcp-go and go-sdk store nothing")
	}
	// Which server answered with which response type.
	byType := map[string][]string{}
	for _, n := range o.targets {
		for _, r := range rep.Runs {
			if r.Target == n && r.Response != "" && !slices.Contains(byType[r.Response], n) {
				byType[r.Response] = append(byType[r.Response], n)
			}
		}
	}
	if len(byType) > 0 {
		var parts []string
		for _, ct := range slices.Sorted(maps.Keys(byType)) {
			what := "one JSON body"
			if ct == "text/event-stream" {
				what = "an event stream"
			}
			parts = append(parts, fmt.Sprintf("by %s with %s (%s)", joinAnd(byType[ct]), ct, what))
		}
		notes = append(notes, "responses: the driver accepts application/json and text/event-stream, as clients do; "+
			"a tools/call was answered "+strings.Join(parts, ", "))
	}
	shipped, same := o.setting(settingShipped), o.setting(settingSame)
	if shipped != nil && same != nil {
		for _, n := range o.targets {
			if shipped.gogc[n] == same.gogc[n] {
				notes = append(notes, fmt.Sprintf("%s ships with GOGC=%s, the common target: its one run a round serves both settings",
					n, formatGOGC(shipped.gogc[n])))
			}
		}
	}
	return notes
}

// roundsRun is the number of rounds with a run.
func (rep *report) roundsRun() int {
	rounds := map[int]bool{}
	for _, r := range rep.Runs {
		rounds[r.Round] = true
	}
	return len(rounds)
}

// plural is "1 round", "2 rounds".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// joinAnd joins names as "a", "a and b", "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeSummary prints the workload, the notes, a table per setting and the
// throughput of every run by round.
func writeSummary(w io.Writer, rep *report) {
	o, wl, env := rep.opts, rep.Workload, rep.Environment
	mode := wl.Mode
	if wl.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g calls/s", wl.Rate)
	}
	fmt.Fprintf(w, "\nworkload: %s, %d sessions, tool %s %s, %s measured after %s warm-up in each run (a fresh server process each)\n",
		mode, wl.Sessions, wl.Tool, wl.Args, o.cfg.Duration, o.cfg.Warmup)
	fmt.Fprintf(w, "machine: %d CPUs, %s, load driver (GOGC=%s) and server share the machine\n",
		env.CPUs, env.GoVersion, formatGOGC(env.DriverGOGC))
	fmt.Fprintf(w, "rounds: %d of %d, interleaved: each runs every server under every setting in turn, every other round in reverse order\n",
		rep.roundsRun(), wl.Rounds)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintln(w, "figures: median [min-max] over the rounds; a ratio is mcpstream's figure over the target's, taken within each round, then its median [min-max]")
	for i, s := range rep.Settings {
		fmt.Fprintf(w, "\n(%c) %s\n\n", 'a'+i, s.Title)
		writeSettingTable(w, s)
	}
	writeByRound(w, rep)
}

// writeSettingTable prints a setting's row per target.
func writeSettingTable(w io.Writer, s settingSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tGOGC\tresponse\tcalls/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tserver us/call\tcalls/s ratio\tcpu/call ratio\t")
	for _, r := range s.Rows {
		errs := fmt.Sprint(r.Errors)
		if r.Errors > 0 {
			errs += " (" + bench.FormatCounts(r.ErrorKinds) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Target, formatGOGC(r.GOGC), shortType(r.Response),
			r.Throughput.format(fmtRate), r.P50.format(fmtMS), r.P99.format(fmtMS), r.P999.format(fmtMS), errs,
			r.ServerUS.format(fmtUS), r.Ratio.formatRatio(), r.CPURatio.formatRatio())
	}
	_ = tw.Flush()
}

// writeByRound prints every run's throughput, a row per round and a column
// per target and GC target.
func writeByRound(w io.Writer, rep *report) {
	var keys []runKey
	for _, r := range rep.Runs {
		if k := (runKey{r.Target, r.GOGC}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		return slices.Index(rep.opts.targets, keys[i].target) < slices.Index(rep.opts.targets, keys[j].target)
	})
	fmt.Fprintf(w, "\ncalls/s by round (server us/call)\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "round\t")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprintln(tw)
	byRound := map[int]map[runKey]*run{}
	for _, r := range rep.Runs {
		if byRound[r.Round] == nil {
			byRound[r.Round] = map[runKey]*run{}
		}
		byRound[r.Round][runKey{r.Target, r.GOGC}] = r
	}
	for _, round := range slices.Sorted(maps.Keys(byRound)) {
		fmt.Fprintf(tw, "%d\t", round)
		for _, k := range keys {
			cell := "-"
			if r := byRound[round][k]; r != nil && r.Result != nil {
				cell = fmt.Sprintf("%s (%s)", fmtRate(r.Result.Throughput), fmtUS(usOf(r.Result.ServerPerCall())))
			}
			fmt.Fprintf(tw, "%s\t", cell)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// format prints the median and, if the values differ, [min-max]; "-" when
// there is no value or the median is zero (not measured).
func (s spread) format(f func(float64) string) string {
	if len(s.Values) == 0 || s.Median == 0 {
		return "-"
	}
	m := f(s.Median)
	if lo, hi := f(s.Min), f(s.Max); len(s.Values) > 1 && (lo != m || hi != m) {
		m += " [" + lo + "-" + hi + "]"
	}
	return m
}

// formatRatio prints a ratio spread as "0.65x [0.63-0.70]", "-" if nil.
func (s *spread) formatRatio() string {
	if s == nil {
		return "-"
	}
	f := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	m := f(s.Median) + "x"
	if lo, hi := f(s.Min), f(s.Max); len(s.Values) > 1 && (lo != f(s.Median) || hi != f(s.Median)) {
		m += " [" + lo + "-" + hi + "]"
	}
	return m
}

func fmtRate(v float64) string { return fmt.Sprintf("%.0f", v) }
func fmtUS(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// fmtMS prints milliseconds with 2-3 significant digits.
func fmtMS(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// shortType is a response media type as the tables print it.
func shortType(ct string) string {
	switch ct {
	case "application/json":
		return "json"
	case "text/event-stream":
		return "sse"
	case "":
		return "-"
	}
	return ct
}
