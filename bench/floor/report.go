package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// run is one part's run in one round.
type run struct {
	Round        int     `json:"round"`
	Part         string  `json:"part"`
	Throughput   float64 `json:"calls_per_s"`
	CPUPerCallUs float64 `json:"cpu_us_per_call"`
	// Cores is the measured process's CPU over the window.
	Cores      float64 `json:"cores"`
	P50Ms      float64 `json:"p50_ms,omitempty"`
	P99Ms      float64 `json:"p99_ms,omitempty"`
	LoadBefore string  `json:"loadavg_before"`
	LoadAfter  string  `json:"loadavg_after"`
}

// report is the runs and their summary.
type report struct {
	Command   []string `json:"command"`
	Sessions  int      `json:"sessions"`
	Rate      float64  `json:"rate,omitempty"` // open-loop calls/s of every part; 0: closed loops
	GOGC      int      `json:"gogc"`
	CPUs      int      `json:"cpus"`
	GoVersion string   `json:"go_version"`
	// ServerCPUs and DriverCPUs are the CPU lists the servers and the
	// load driver were pinned to (--server-cpus, --driver-cpus), if any.
	ServerCPUs string `json:"server_cpus,omitempty"`
	DriverCPUs string `json:"driver_cpus,omitempty"`
	Runs       []run  `json:"runs"`
	// Medians over the rounds of CPU a call (us), and mcpstream's ratio
	// to the floor (http + jetstream), per round: its median and range.
	HTTPUs      float64   `json:"http_us"`
	JetStreamUs float64   `json:"jetstream_us"`
	FloorUs     float64   `json:"floor_us"`
	McpstreamUs float64   `json:"mcpstream_us"`
	Ratios      []float64 `json:"ratios"`
	Ratio       float64   `json:"ratio"`
	// JoinedUs is the joined part's median CPU a call; JoinedRatio the
	// median over the rounds of joined over the floor (what joining the
	// parts costs), and OverJoined of mcpstream over joined (what
	// mcpstream's own logic costs).
	JoinedUs    float64 `json:"joined_us,omitempty"`
	JoinedRatio float64 `json:"joined_ratio,omitempty"`
	OverJoined  float64 `json:"mcpstream_over_joined,omitempty"`
	// BaselineUs is the baseline part's median CPU a call (--baseline);
	// OverBaselineRounds mcpstream's over it in each round, OverBaseline
	// their median, and Lower the rounds in which mcpstream's was lower.
	BaselineUs         float64   `json:"baseline_us,omitempty"`
	OverBaselineRounds []float64 `json:"mcpstream_over_baseline_rounds,omitempty"`
	OverBaseline       float64   `json:"mcpstream_over_baseline,omitempty"`
	Lower              int       `json:"rounds_lower_than_baseline,omitempty"`
	// Parts is every part's medians over the rounds, in the order run.
	Parts []partMedians `json:"parts"`
	// Against is, when the in-process servers ran, the median over the
	// rounds of each stored-or-not part's throughput over theirs.
	Against []against `json:"against,omitempty"`
	// Where is, with --profile and --profile-joined, the joined part's
	// and mcpstream's CPU a call in round WhereRound split into
	// components from their profiles.
	Where      []whereRow `json:"where,omitempty"`
	WhereRound int        `json:"where_round,omitempty"`
}

// partMedians is one part's medians over the rounds.
type partMedians struct {
	Part         string  `json:"part"`
	CPUPerCallUs float64 `json:"cpu_us_per_call"`
	Throughput   float64 `json:"calls_per_s"`
}

// against is Part's throughput over Server's (an in-process MCP server):
// the median over the rounds of the ratio within each round.
type against struct {
	Part   string  `json:"part"`
	Server string  `json:"server"`
	Ratio  float64 `json:"ratio"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize fills the medians and ratios from the runs.
func (r *report) summarize() {
	by, calls := map[string][]float64{}, map[string][]float64{}
	round, roundCalls := map[int]map[string]float64{}, map[int]map[string]float64{}
	r.Parts = nil
	for _, rn := range r.Runs {
		if by[rn.Part] == nil {
			r.Parts = append(r.Parts, partMedians{Part: rn.Part})
		}
		by[rn.Part] = append(by[rn.Part], rn.CPUPerCallUs)
		calls[rn.Part] = append(calls[rn.Part], rn.Throughput)
		if round[rn.Round] == nil {
			round[rn.Round], roundCalls[rn.Round] = map[string]float64{}, map[string]float64{}
		}
		round[rn.Round][rn.Part], roundCalls[rn.Round][rn.Part] = rn.CPUPerCallUs, rn.Throughput
	}
	for i := range r.Parts {
		r.Parts[i].CPUPerCallUs, r.Parts[i].Throughput = median(by[r.Parts[i].Part]), median(calls[r.Parts[i].Part])
	}
	r.Against = nil
	for _, server := range []string{partMCPGo, partGoSDK} {
		for _, part := range []string{partMcpstream, partJoined, partCore} {
			var ratios []float64
			for _, m := range roundCalls {
				if m[server] > 0 && m[part] > 0 {
					ratios = append(ratios, m[part]/m[server])
				}
			}
			if len(ratios) > 0 {
				r.Against = append(r.Against, against{Part: part, Server: server, Ratio: median(ratios)})
			}
		}
	}
	r.HTTPUs, r.JetStreamUs, r.McpstreamUs = median(by[partHTTP]), median(by[partJetStream]), median(by[partMcpstream])
	r.JoinedUs = median(by[partJoined])
	r.FloorUs = r.HTTPUs + r.JetStreamUs
	r.Ratios = nil
	var joined, over []float64
	for i := 1; i <= len(round); i++ {
		m := round[i]
		f := m[partHTTP] + m[partJetStream]
		if m[partHTTP] == 0 || m[partJetStream] == 0 {
			continue
		}
		if m[partMcpstream] > 0 {
			r.Ratios = append(r.Ratios, m[partMcpstream]/f)
		}
		if m[partJoined] > 0 {
			joined = append(joined, m[partJoined]/f)
			if m[partMcpstream] > 0 {
				over = append(over, m[partMcpstream]/m[partJoined])
			}
		}
	}
	r.Ratio, r.JoinedRatio, r.OverJoined = median(r.Ratios), median(joined), median(over)
	r.BaselineUs, r.OverBaselineRounds, r.Lower = median(by[partBaseline]), nil, 0
	for i := 1; i <= len(round); i++ {
		if m := round[i]; m[partBaseline] > 0 && m[partMcpstream] > 0 {
			r.OverBaselineRounds = append(r.OverBaselineRounds, m[partMcpstream]/m[partBaseline])
			if m[partMcpstream] < m[partBaseline] {
				r.Lower++
			}
		}
	}
	r.OverBaseline = median(r.OverBaselineRounds)
}

// write prints every run, then the summary.
func (r *report) write(w io.Writer) {
	fmt.Fprintln(w, strings.Join(r.Command, " "))
	load := fmt.Sprintf("%d closed-loop sessions", r.Sessions)
	if r.Rate > 0 {
		load = fmt.Sprintf("an open loop at %.0f calls/s over %d sessions", r.Rate, r.Sessions)
	}
	where := "the load driver on the same machine"
	if r.ServerCPUs != "" || r.DriverCPUs != "" {
		where = fmt.Sprintf("servers on CPUs %s, the load driver on CPUs %s", orAny(r.ServerCPUs), orAny(r.DriverCPUs))
	}
	fmt.Fprintf(w, "%s, echo; every server at GOGC %d; %d CPUs, %s; %s\n\n",
		load, r.GOGC, r.CPUs, r.GoVersion, where)
	fmt.Fprintf(w, "%-5s %-11s %10s %12s %7s %8s %8s  %s\n", "round", "part", "calls/s", "CPU us/call", "cores", "p50 ms", "p99 ms", "load average before / after")
	for _, rn := range r.Runs {
		fmt.Fprintf(w, "%-5d %-11s %10.0f %12.1f %7.2f %8.2f %8.2f  %s / %s\n", rn.Round, rn.Part, rn.Throughput, rn.CPUPerCallUs, rn.Cores, rn.P50Ms, rn.P99Ms, rn.LoadBefore, rn.LoadAfter)
	}
	r.writeAgainst(w)
	r.writeBaseline(w)
	r.writeWhere(w)
	if len(r.Ratios) == 0 {
		return
	}
	fmt.Fprintf(w, "\nCPU a call (medians): http %.1f us + jetstream %.1f us = floor %.1f us; mcpstream %.1f us: %.2fx the floor (rounds: %s)\n",
		r.HTTPUs, r.JetStreamUs, r.FloorUs, r.McpstreamUs, r.Ratio, list(r.Ratios, "%.2f"))
	if r.JoinedUs > 0 {
		fmt.Fprintf(w, "joined (http and jetstream in one process, no MCP logic): %.1f us, %.2fx the floor; mcpstream %.2fx joined (medians of the rounds' ratios)\n",
			r.JoinedUs, r.JoinedRatio, r.OverJoined)
	}
}

// writeAgainst prints the joined-core part and the throughput against the
// in-process servers, when they ran.
func (r *report) writeAgainst(w io.Writer) {
	for _, p := range r.Parts {
		if p.Part == partCore {
			fmt.Fprintf(w, "\njoined-core (joined with core NATS instead of a stream: no stored request, no at-least-once delivery): %.1f us a call, %.0f calls/s (medians)\n", p.CPUPerCallUs, p.Throughput)
		}
	}
	for _, server := range []string{partMCPGo, partGoSDK} {
		var parts []string
		for _, a := range r.Against {
			if a.Server == server {
				parts = append(parts, fmt.Sprintf("%s %.2fx", a.Part, a.Ratio))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "throughput against %s (medians of the rounds' ratios): %s\n", server, strings.Join(parts, ", "))
		}
	}
}

// writeBaseline prints mcpstream against the baseline part, when it ran.
func (r *report) writeBaseline(w io.Writer) {
	if len(r.OverBaselineRounds) == 0 {
		return
	}
	fmt.Fprintf(w, "\nCPU a call (medians): baseline %.1f us, mcpstream %.1f us; mcpstream over the baseline: %.3f (rounds: %s), lower in %d of %d rounds\n",
		r.BaselineUs, r.McpstreamUs, r.OverBaseline, list(r.OverBaselineRounds, "%.3f"), r.Lower, len(r.OverBaselineRounds))
}

// list is v's numbers in format, comma-separated.
func list(v []float64, format string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// orAny is a CPU list, or "any" for none.
func orAny(cpus string) string {
	if cpus == "" {
		return "any"
	}
	return cpus
}
