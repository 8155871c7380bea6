package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// run12 makes 12 samples, 10 s apart, from f(i).
func run12(f func(i int) Sample) []Sample {
	s := make([]Sample, 12)
	for i := range s {
		s[i] = f(i)
		s[i].At = float64(10 * (i + 1))
	}
	return s
}

// verdictOf finds a series' verdict.
func verdictOf(t *testing.T, vs []Verdict, series string) Verdict {
	t.Helper()
	for _, v := range vs {
		if v.Series == series {
			return v
		}
	}
	t.Fatalf("no verdict on %q in %+v", series, vs)
	return Verdict{}
}

func TestDecide(t *testing.T) {
	tol := defaultTolerances(0.15)
	const mib = 1 << 20
	flat := func(i int) Sample {
		return Sample{RSS: 200 * mib, Goroutines: 500, OpenFiles: 300}
	}
	vs, err := decide(run12(flat), 0, Sample{}, Sample{}, tol)
	if err != nil || unbounded(vs) != nil {
		t.Fatalf("a flat run: %v, %v", err, unbounded(vs))
	}

	// RSS: a warm-up climb in the first third is no growth; 10% more in
	// the last third is within 15%; a steady climb of 10% a sample is not.
	for _, tc := range []struct {
		name    string
		rss     func(i int) int64
		bounded bool
	}{
		{"warm-up", func(i int) int64 { return int64(min(i, 3)) * 60 * mib }, true},
		{"within tolerance", func(i int) int64 { return 200*mib + int64(i/8)*20*mib }, true},
		{"leak", func(i int) int64 { return 200*mib + int64(i)*20*mib }, false},
		{"small base, absolute margin", func(i int) int64 { return 20*mib + int64(i/8)*10*mib }, true},
	} {
		vs, err := decide(run12(func(i int) Sample { s := flat(i); s.RSS = tc.rss(i); return s }), 0, Sample{}, Sample{}, tol)
		if err != nil {
			t.Fatal(err)
		}
		if v := verdictOf(t, vs, "rss"); v.Bounded != tc.bounded {
			t.Errorf("rss %s: bounded %v, want %v (%+v)", tc.name, v.Bounded, tc.bounded, v)
		}
	}

	// Goroutines: one more a sample is within the margin of 64; 60 more
	// is a leak. Open files: no relative allowance. Bursts do not count,
	// the level the series comes back to does.
	vs, _ = decide(run12(func(i int) Sample { s := flat(i); s.Goroutines = 500 + i; s.OpenFiles = 300 + 40*i; return s }), 0, Sample{}, Sample{}, tol)
	if !verdictOf(t, vs, "goroutines").Bounded || verdictOf(t, vs, "open files").Bounded {
		t.Errorf("goroutines +1 a sample should be bounded, open files +40 a sample not: %+v", vs)
	}
	vs, _ = decide(run12(func(i int) Sample { s := flat(i); s.Goroutines = 500 + 60*i; return s }), 0, Sample{}, Sample{}, tol)
	err = unbounded(vs)
	if err == nil || !strings.Contains(err.Error(), "goroutines grew") || strings.Contains(err.Error(), "rss") {
		t.Errorf("goroutines +60 a sample: %v, want goroutines named alone", err)
	}

	bursty := func(i int) Sample {
		s := flat(i)
		if i%4 == 0 || i == 11 { // stalls, two of them in the last third
			s.Goroutines, s.OpenFiles = 1500, 1100
		}
		return s
	}
	if vs, _ := decide(run12(bursty), 0, Sample{}, Sample{}, tol); unbounded(vs) != nil {
		t.Errorf("bursts of connections: %v", unbounded(vs))
	}

	// Samples at which the server fell behind (refusals, or under 95% of
	// the rate answered) are left out; a leak in the others is not.
	const rate = 1000
	overloaded := func(leak int) func(i int) Sample {
		return func(i int) Sample {
			s := flat(i)
			s.OKPerSecond, s.Goroutines, s.OpenFiles = rate, 500+leak*i, 300
			if i >= 8 && i%2 == 0 { // behind, connections piling up
				s.OKPerSecond, s.Calls = 700, map[string]int64{classRefused: 50}
				s.Goroutines, s.OpenFiles = 2000, 1500
			}
			return s
		}
	}
	vs, _ = decide(run12(overloaded(0)), rate, Sample{}, Sample{}, tol)
	if v := verdictOf(t, vs, "open files"); !v.Bounded || !strings.Contains(v.Note, "kept up") {
		t.Errorf("files piling up while overloaded: %+v", v)
	}
	vs, _ = decide(run12(overloaded(40)), rate, Sample{}, Sample{}, tol)
	if v := verdictOf(t, vs, "goroutines"); v.Bounded {
		t.Errorf("goroutines leaking 40 a sample besides overloads: %+v", v)
	}

	// After the load, goroutines and open files come back to where they
	// were before, within a small margin.
	before := Sample{RSS: 50 * mib, Goroutines: 190, OpenFiles: 24}
	for _, tc := range []struct {
		goroutines, files int
		bad               string
	}{{200, 25, ""}, {400, 25, "goroutines after the load"}, {200, 60, "open files after the load"}} {
		after := Sample{RSS: 200 * mib, Goroutines: tc.goroutines, OpenFiles: tc.files}
		vs, err := decide(run12(flat), 0, before, after, tol)
		if err != nil {
			t.Fatal(err)
		}
		err = unbounded(vs)
		if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("after %d goroutines, %d files: %v, want %q named", tc.goroutines, tc.files, err, tc.bad)
		}
	}

	if _, err := decide(run12(flat)[:minSamples-1], 0, Sample{}, Sample{}, tol); err == nil {
		t.Error("decided on too few samples")
	}
}

func TestDecideStreams(t *testing.T) {
	tol := defaultTolerances(0.15)
	stream := func(name string, bytes uint64, maxBytes int64, maxAge time.Duration, discardNew bool) StreamSample {
		return StreamSample{Name: name, Bytes: bytes, MaxBytes: maxBytes, MaxMsgs: -1, MaxAgeS: maxAge.Seconds(), DiscardNew: discardNew}
	}
	const mib = 1 << 20
	vs, err := decide(run12(func(i int) Sample {
		return Sample{RSS: 100 * mib, Goroutines: 100, OpenFiles: 50, Streams: []StreamSample{
			// A request partition growing 10 MiB a sample: bounded by its
			// limit, the oldest dropped.
			stream("MCP_REQ_0", uint64(i)*10*mib, 256*mib, time.Hour, false),
			// A bucket that refuses writes when full, growing 1 MiB every
			// 10 s with entries living 1h: levels off at 360 MiB, past its
			// 256 MiB.
			stream("KV_full", uint64(i)*mib, 256*mib, time.Hour, true),
			// The same growth, entries living 10 minutes: 60 MiB, fits.
			stream("KV_fits", uint64(i)*mib, 256*mib, 10*time.Minute, true),
			// Full, refusing writes.
			stream("KV_refusing", 256*mib, 256*mib, time.Hour, true),
			// Full, dropping its oldest.
			stream("MCP_REQ_1", 256*mib, 256*mib, time.Hour, false),
			// No byte limit and growing.
			stream("KV_open", uint64(i)*2*mib, -1, 0, true),
			// No byte limit, a tiny registry.
			stream("KV_tiny", 2048, -1, 0, true),
		}}
	}), 0, Sample{}, Sample{}, tol)
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]bool{"stream MCP_REQ_0": true, "stream KV_full": false, "stream KV_fits": true,
		"stream KV_open": false, "stream KV_tiny": true, "stream KV_refusing": false, "stream MCP_REQ_1": true, "rss": true} {
		if v := verdictOf(t, vs, series); v.Bounded != want {
			t.Errorf("%s: bounded %v, want %v (%+v)", series, v.Bounded, want, v)
		}
	}
	if v := verdictOf(t, vs, "stream MCP_REQ_0"); !strings.Contains(v.Note, "drops its oldest") {
		t.Errorf("MCP_REQ_0's note %q does not say it drops its oldest", v.Note)
	}
	if v := verdictOf(t, vs, "stream KV_full"); !strings.Contains(v.Note, "levels off at 360.0 MiB") {
		t.Errorf("KV_full's note %q, want it levelling off at 360.0 MiB", v.Note)
	}
	// A stream over its limit is not bounded, whatever its policy.
	vs, _ = decide(run12(func(i int) Sample {
		return Sample{Streams: []StreamSample{stream("S", 300*mib, 256*mib, 0, false)}}
	}), 0, Sample{}, Sample{}, tol)
	if v := verdictOf(t, vs, "stream S"); v.Bounded {
		t.Errorf("a stream over its limit: %+v", v)
	}
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		q    float64
		want float64
	}{{nil, 0.5, 0}, {[]float64{3}, 0.5, 3}, {[]float64{5, 1, 3}, 0.5, 3}, {[]float64{4, 1, 3, 2}, 0.5, 2.5},
		{[]float64{9, 1, 5, 3, 7}, 0.25, 3}, {[]float64{4, 1, 3, 2}, 0.25, 1.75}, {[]float64{4, 1, 3, 2}, 1, 4}} {
		if got := quantile(tc.v, tc.q); got != tc.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.v, tc.q, got, tc.want)
		}
	}
}

func TestClassOf(t *testing.T) {
	for kind, want := range map[string]string{"": classOK, bench.KindHTTP503: classRefused, bench.KindOverloaded: classRefused,
		bench.KindHTTP429: classRefused, bench.KindTimeout: classLost, bench.KindTransport: classLost, bench.KindCanceled: classLost,
		kindNoSession: classLost, kindCut: classCut, bench.KindDriverOverflow: classOverflow, "http-500": classFailed,
		"rpc--32603": classFailed, bench.KindToolError: classFailed, bench.KindBadResponse: classFailed} {
		if got := classOf(kind); got != want {
			t.Errorf("classOf(%q) = %q, want %q", kind, got, want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 191
go_memstats_heap_inuse_bytes 8.192e+06
mcpstream_gateway_sessions_cached{gateway="gw-1"} 7
mcpstream_gateway_requests_total{gateway="gw-1",method="tools/call",outcome="ok"} 10
mcpstream_gateway_requests_total{gateway="gw-1",method="a b}",outcome="ok"} 5
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 191 || m["go_memstats_heap_inuse_bytes"] != 8.192e6 || m["mcpstream_gateway_sessions_cached"] != 7 ||
		m["mcpstream_gateway_requests_total"] != 15 {
		t.Errorf("parseMetrics = %v", m)
	}
	if _, err := parseMetrics(strings.NewReader("x{a=\"1\" 3\n")); err == nil {
		t.Error("no error for a line without its closing brace")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--duration", "1m", "--interval", "5s", "--fraction", "0.25", "--tool", "sleep", "--abrupt", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != time.Minute || o.fraction != 0.25 || o.tool != "sleep" || o.abrupt != 0 || o.clients != 200 {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{"--fraction", "0"}, {"--duration", "20s", "--interval", "5s"}, {"--abrupt", "2"},
		{"--clients", "0"}, {"--timeout", "0s"}, {"--max-bytes", "-1"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestParseCPULine(t *testing.T) {
	// user 100, nice 0, system 50, idle 1000, iowait 20, irq 5, softirq 5, steal 40 ticks.
	if got := parseCPULine("cpu  100 0 50 1000 20 5 5 40 0 0"); got != 2*time.Second {
		t.Errorf("parseCPULine = %v, want 2s", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3"} {
		if got := parseCPULine(bad); got != -1 {
			t.Errorf("parseCPULine(%q) = %v, want -1", bad, got)
		}
	}
}
