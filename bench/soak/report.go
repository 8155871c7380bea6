package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// Report is what a soak saw, as printed and written to JSON.
type Report struct {
	Command []string        `json:"command"`
	Server  []string        `json:"server"` // the dev command line, binary left out
	GOGC    string          `json:"gogc"`
	Machine string          `json:"machine"`
	Tool    string          `json:"tool"`
	Args    json.RawMessage `json:"args"`
	Load    LoadJSON        `json:"load"`
	// Capacity is the closed-loop capacity measured (0 with --rate); Rate
	// the open loop's.
	Capacity float64 `json:"capacity"`
	Rate     float64 `json:"rate"`
	// Baseline is sampled before the open loop (after the capacity run),
	// Samples during it, After an interval after it ended and every session
	// and stream closed.
	Baseline Sample   `json:"baseline"`
	Samples  []Sample `json:"samples"`
	After    Sample   `json:"after"`
	// Drain is how long the calls due before the end took to finish, in
	// seconds after it.
	Drain    float64   `json:"drain_s"`
	Total    Totals    `json:"total"`
	Verdicts []Verdict `json:"verdicts"`
	Bounded  bool      `json:"bounded"`
}

// LoadJSON is the load's configuration.
type LoadJSON struct {
	Clients       int     `json:"clients"`
	MaxCalls      int     `json:"max_calls"`
	Parallel      int     `json:"parallel"`
	StreamShare   float64 `json:"stream_share"`
	StreamHoldS   float64 `json:"stream_hold_s"`
	AbruptShare   float64 `json:"abrupt_share"`
	CutWithinMS   float64 `json:"cut_within_ms"`
	TimeoutS      float64 `json:"timeout_s"`
	DurationS     float64 `json:"duration_s"`
	IntervalS     float64 `json:"interval_s"`
	Fraction      float64 `json:"fraction"`
	CapSessions   int     `json:"capacity_sessions"`
	CapDurationS  float64 `json:"capacity_duration_s"`
	ToleranceRate float64 `json:"tolerance"`
	// MaxBytes is --max-bytes: the request streams' limit the soak
	// provisioned (0: dev's default).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

func (o *options) loadJSON() LoadJSON {
	return LoadJSON{Clients: o.clients, MaxCalls: o.maxCalls, Parallel: o.parallel, StreamShare: o.streamShare,
		StreamHoldS: o.streamHold.Seconds(), AbruptShare: o.abrupt, CutWithinMS: float64(o.cutWithin) / float64(time.Millisecond),
		TimeoutS: o.timeout.Seconds(), DurationS: o.duration.Seconds(), IntervalS: o.interval.Seconds(), Fraction: o.fraction,
		CapSessions: o.capSessions, CapDurationS: o.capDuration.Seconds(), ToleranceRate: o.tolerance, MaxBytes: o.maxBytes}
}

// Totals are the whole run's counts.
type Totals struct {
	Calls       map[string]int64 `json:"calls"` // by outcome class
	Kinds       map[string]int64 `json:"kinds"` // failed, refused and lost calls by error kind
	P50MS       float64          `json:"p50_ms"`
	P99MS       float64          `json:"p99_ms"`
	P999MS      float64          `json:"p999_ms"`
	MaxMS       float64          `json:"max_ms"`
	Opened      int64            `json:"sessions_opened"`
	Deleted     int64            `json:"sessions_deleted"`
	Abandoned   int64            `json:"sessions_abandoned"`
	Streams     int64            `json:"streams_held"`
	StreamsEnd  int64            `json:"streams_ended_by_server"`
	SetupErrors map[string]int64 `json:"setup_errors"`
}

func totals(w *window) Totals {
	msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	t := Totals{Calls: w.classes, Kinds: w.kinds, P50MS: msOf(w.quantile(50)), P99MS: msOf(w.quantile(99)),
		P999MS: msOf(w.quantile(99.9)), Opened: w.opened, Deleted: w.deleted, Abandoned: w.abandoned,
		Streams: w.streams, StreamsEnd: w.streamsEnded, SetupErrors: w.setupErrors}
	if w.hist.TotalCount() > 0 {
		t.MaxMS = float64(w.hist.Max()) / 1000
	}
	return t
}

// lostKinds selects the error kinds of lost calls; refusedKinds and
// failedKinds those of refused and failed ones.
func lostKinds(k string) bool    { return classOf(k) == classLost }
func refusedKinds(k string) bool { return classOf(k) == classRefused }
func failedKinds(k string) bool  { return classOf(k) == classFailed }

// fmtCounts prints the counts whose kind keep selects, "kind n, ...", or
// "0".
func fmtCounts(m map[string]int64, keep func(string) bool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if keep == nil || keep(k) {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// writeTable prints the run's conditions, a row per sample (the baseline
// and the sample after the load included), the totals and the verdicts.
func (r *Report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "\nsoak: %s; server GOGC %s\n", r.Machine, r.GOGC)
	fmt.Fprintf(w, "load: open loop at %.0f calls/s", r.Rate)
	if r.Capacity > 0 {
		fmt.Fprintf(w, " (%.0f%% of %.0f closed-loop capacity)", 100*r.Load.Fraction, r.Capacity)
	}
	l := r.Load
	fmt.Fprintf(w, ", tool %s %s, %s; %d clients, a session making 1-%d calls (%d at once at most) then DELETE; %.0f%% holding a GET stream up to %s; %.0f%% leaving abruptly\n\n",
		r.Tool, r.Args, time.Duration(l.DurationS*float64(time.Second)), l.Clients, l.MaxCalls, l.Parallel,
		100*l.StreamShare, time.Duration(l.StreamHoldS*float64(time.Second)), 100*l.AbruptShare)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t s\tRSS MiB\theap MiB\tgoroutines\tfiles\tcpu\tdriver cpu\tmachine cpu\tstreams MiB\tstream msgs\tsessions\tGET streams\tok/s\tp99 ms\trefused\tfailed\tlost\tcut\topened\t")
	row := func(label string, s Sample) {
		var msgs uint64
		for _, st := range s.Streams {
			msgs += st.Msgs
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%d\t%d\t%.0f\t%.2f\t%d\t%d\t%d\t%d\t%d\t\n", label,
			mib(s.RSS), mib(s.HeapInuse), s.Goroutines, s.OpenFiles, s.CPUCores, s.DriverCores, s.MachineCores, mib(int64(streamBytes(s))), msgs,
			s.SessionsCached, s.EventStreams, s.OKPerSecond, s.P99MS, s.Calls[classRefused], s.Calls[classFailed],
			s.Calls[classLost], s.Calls[classCut], s.Opened)
	}
	row("before", r.Baseline)
	for _, s := range r.Samples {
		row(fmt.Sprintf("%.0f", s.At), s)
	}
	if r.After.RSS > 0 {
		row("after", r.After)
	}
	_ = tw.Flush()
	t := r.Total
	fmt.Fprintf(w, "\ncalls: ok %d, refused %d, failed %d, lost %d, cut by abrupt clients %d, driver overflow %d; latency ms p50 %.2f p99 %.2f p99.9 %.2f max %.1f\n",
		t.Calls[classOK], t.Calls[classRefused], t.Calls[classFailed], t.Calls[classLost], t.Calls[classCut], t.Calls[classOverflow],
		t.P50MS, t.P99MS, t.P999MS, t.MaxMS)
	if t.Calls[classRefused]+t.Calls[classFailed]+t.Calls[classLost] > 0 {
		fmt.Fprintf(w, "refused: %s; failed: %s; lost: %s\n", fmtCounts(t.Kinds, refusedKinds), fmtCounts(t.Kinds, failedKinds), fmtCounts(t.Kinds, lostKinds))
	}
	fmt.Fprintf(w, "sessions: %d opened, %d deleted, %d abandoned; %d GET streams held (%d ended by the server); setup errors %s; calls finished %.1f s after the end\n",
		t.Opened, t.Deleted, t.Abandoned, t.Streams, t.StreamsEnd, fmtCounts(t.SetupErrors, nil), r.Drain)
	if len(r.Verdicts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nmiddle third -> last third of the samples (or before -> after the load):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range r.Verdicts {
		verdict := "bounded"
		if !v.Bounded {
			verdict = "GREW"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s -> %s\t(allowed +%s)\t%s\t%s\n", v.Series, v.Stat, fmtValue(v.Series, v.Middle), fmtValue(v.Series, v.Last),
			fmtValue(v.Series, v.Allowed), verdict, v.Note)
	}
	_ = tw.Flush()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// writeJSON writes the report to path, indented but for the samples, one
// to a line, last; the streams' limits, the same in every sample, are
// written once, as stream_limits (from the last sample), and left out of
// the samples' streams.
func (r *Report) writeJSON(path string) error {
	type plain Report
	head := struct {
		*plain
		Samples      []Sample       `json:"samples,omitempty"` // written apart
		StreamLimits []StreamSample `json:"stream_limits"`
	}{plain: (*plain)(r)}
	if n := len(r.Samples); n > 0 {
		for _, st := range r.Samples[n-1].Streams {
			st.Bytes, st.Msgs = 0, 0
			head.StreamLimits = append(head.StreamLimits, st)
		}
	}
	b, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	out.Write(bytes.TrimSuffix(b, []byte("\n}")))
	out.WriteString(",\n  \"samples\": [")
	for i, s := range r.Samples {
		s.Streams = slices.Clone(s.Streams)
		for j, st := range s.Streams {
			s.Streams[j] = StreamSample{Name: st.Name, Bytes: st.Bytes, Msgs: st.Msgs}
		}
		line, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteString("\n    ")
		out.Write(line)
	}
	out.WriteString("\n  ]\n}\n")
	return bench.WriteFile(path, func(w io.Writer) error { _, err := w.Write(out.Bytes()); return err })
}
