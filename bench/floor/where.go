package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/pprof/profile"
)

// Where a call's CPU goes, from two CPU profiles of the same round: the
// joined part's (--profile-joined) and mcpstream's (--profile). Every
// sample is put in one component, and a component's CPU a call is its
// share of the profile's samples times the run's CPU a call. The two
// processes do the same things but for mcpstream's logic, so the
// components line up: what mcpstream spends more in each is where the
// difference between them goes.

// Components of a call's CPU, in the order reported.
const (
	compGateway = "gateway: handler, reply routing"
	compWorker  = "worker: delivery callback, handler"
	compHTTP    = "net/http serving, sockets"
	compClient  = "NATS client: reads, flushes"
	compServer  = "NATS server: stream, consumers"
	compGC      = "GC: mark, sweep, scavenge"
	compSched   = "scheduler, idle"
	compOther   = "other"
)

var components = []string{compGateway, compWorker, compHTTP, compClient, compServer, compGC, compSched, compOther}

// roles name the functions of each process's own code, by prefix: a
// sample with one of them on its stack is that code's, whatever it
// called (the gateway's publish, a handler's allocation). The joined
// part's are bench/floor's own: its HTTP handler, its call's publish and
// wait, its routing of replies and stream acknowledgements; its worker's
// callback.
var roles = []struct{ prefix, comp string }{
	{"github.com/mcpstream/mcpstream/gateway.", compGateway},
	{"github.com/mcpstream/mcpstream/gateway/", compGateway},
	{"github.com/mcpstream/mcpstream/workers.", compWorker},
	{"github.com/mcpstream/mcpstream/workers/", compWorker},
	{"main.(*joined).", compGateway},
	{"main.(*pipeline).publish", compGateway},
	{"main.(*pipeline).ack", compGateway},
	{"main.(*pipeline).work", compWorker},
}

// role is the component of function fn when it is of a process's own
// code, or "".
func role(fn string) string {
	for _, r := range roles {
		if strings.HasPrefix(fn, r.prefix) {
			return r.comp
		}
	}
	// rpcHandler's closure is named after the function it is inlined in
	// (main.serveJoined.rpcHandler.func1).
	if strings.HasPrefix(fn, "main.") && strings.Contains(fn, "rpcHandler.func") {
		return compGateway
	}
	return ""
}

// entries name, by prefix, the goroutines of the libraries and the
// runtime: a sample with no role on its stack is counted under the first
// of them found from the stack's root.
var entries = []struct{ prefix, comp string }{
	{"time.goFunc", compOther}, // time.AfterFunc's callbacks: timers of any part
	{"github.com/nats-io/nats-server/", compServer},
	{"github.com/nats-io/nats%2ego.", compClient}, // the symbol's escaped form of nats.go
	{"github.com/nats-io/nats.go/", compClient},
	{"net/http.", compHTTP},
	{"net.", compHTTP},
	{"internal/poll.", compHTTP},
	{"runtime.gcBgMarkWorker", compGC},
	{"runtime.bgsweep", compGC},
	{"runtime.bgscavenge", compGC},
	{"runtime.mcall", compSched},
	{"runtime.park_m", compSched},
	{"runtime.schedule", compSched},
	{"runtime.findRunnable", compSched},
	{"runtime.mstart", compSched},
}

// component is the component of a sample's stack, given leaf first as
// pprof stores it.
func component(stack []string) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if c := role(stack[i]); c != "" {
			return c
		}
	}
	for i := len(stack) - 1; i >= 0; i-- {
		for _, e := range entries {
			if strings.HasPrefix(stack[i], e.prefix) {
				return e.comp
			}
		}
	}
	return compOther
}

// shares reads a CPU profile and returns each component's share of its
// CPU time (0 to 1).
func shares(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading profile %s: %w", path, err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("%s: not a CPU profile: sample types %v", path, p.SampleType)
	}
	by := make(map[string]float64, len(components))
	var total float64
	var stack []string
	for _, s := range p.Sample {
		stack = stack[:0]
		for _, loc := range s.Location {
			// Inlined calls come first in a location's lines, leaf first.
			for _, l := range loc.Line {
				if l.Function != nil {
					stack = append(stack, l.Function.Name)
				}
			}
		}
		v := float64(s.Value[vi])
		by[component(stack)] += v
		total += v
	}
	if total == 0 {
		return nil, fmt.Errorf("%s: profile has no samples", path)
	}
	for c := range by {
		by[c] /= total
	}
	return by, nil
}

// whereRow is one component's CPU a call in the joined part and in
// mcpstream.
type whereRow struct {
	Component   string  `json:"component"`
	JoinedUs    float64 `json:"joined_us"`
	McpstreamUs float64 `json:"mcpstream_us"`
}

// split fills r.Where from the joined part's and mcpstream's profiles of
// round, each part's CPU a call its run's in that round. It returns an
// error when either did not run in round or a profile cannot be read.
func (r *report) split(round int, joinedProfile, mcpstreamProfile string) error {
	us := map[string]float64{}
	for _, rn := range r.Runs {
		if rn.Round == round {
			us[rn.Part] = rn.CPUPerCallUs
		}
	}
	if us[partJoined] == 0 || us[partMcpstream] == 0 {
		return fmt.Errorf("--profile-joined: round %d ran no joined and mcpstream parts to split", round)
	}
	j, err := shares(joinedProfile)
	if err != nil {
		return err
	}
	m, err := shares(mcpstreamProfile)
	if err != nil {
		return err
	}
	r.Where, r.WhereRound = make([]whereRow, 0, len(components)), round
	for _, c := range components {
		r.Where = append(r.Where, whereRow{Component: c, JoinedUs: j[c] * us[partJoined], McpstreamUs: m[c] * us[partMcpstream]})
	}
	return nil
}

// writeWhere prints r.Where as a table with its totals, when there is one.
func (r *report) writeWhere(w io.Writer) {
	if len(r.Where) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwhere a call's CPU goes, us a call (round %d's profiles: each component's share of the samples times the run's CPU a call)\n", r.WhereRound)
	fmt.Fprintf(w, "  %-36s %8s %10s %8s\n", "component", "joined", "mcpstream", "more")
	var j, m float64
	for _, c := range r.Where {
		fmt.Fprintf(w, "  %-36s %8.1f %10.1f %+8.1f\n", c.Component, c.JoinedUs, c.McpstreamUs, c.McpstreamUs-c.JoinedUs)
		j, m = j+c.JoinedUs, m+c.McpstreamUs
	}
	fmt.Fprintf(w, "  %-36s %8.1f %10.1f %+8.1f\n", "total", j, m, m-j)
}
