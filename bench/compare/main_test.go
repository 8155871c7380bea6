package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// TestMain lets the test binary serve as the plain servers, as the harness
// re-executes itself: `compare.test serve-mcpgo --addr ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if h := serverHandler(os.Args[1]); h != nil {
			os.Exit(serve(os.Args[1], h, os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(m.Run())
}

// gogcOf is each setting's GC target by target.
func gogcOf(o *options) map[string]map[string]int {
	m := map[string]map[string]int{}
	for _, s := range o.settings {
		m[s.name] = s.gogc
	}
	return m
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 3 || o.gogc != 400 || o.cfg.Sessions != 64 || o.cfg.Duration != 10*time.Second || o.cfg.Warmup != 2*time.Second {
		t.Errorf("rounds %d, gogc %d, sessions %d, duration %s, warm-up %s; want 3, 400, 64, 10s, 2s",
			o.rounds, o.gogc, o.cfg.Sessions, o.cfg.Duration, o.cfg.Warmup)
	}
	if want := []string{"mcpstream", "mcp-go", "go-sdk"}; !slices.Equal(o.targets, want) {
		t.Errorf("targets %v, want %v", o.targets, want)
	}
	want := map[string]map[string]int{
		"shipped": {"mcpstream": 400, "mcp-go": 100, "go-sdk": 100},
		"same":    {"mcpstream": 400, "mcp-go": 400, "go-sdk": 400},
	}
	if got := gogcOf(o); !reflect.DeepEqual(got, want) {
		t.Errorf("GC targets %v, want %v", got, want)
	}
	if o.settings[0].name != "shipped" || o.settings[1].name != "same" {
		t.Errorf("settings in order %s, %s; want shipped, same", o.settings[0].name, o.settings[1].name)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--gogc", "200", "--rounds", "2", "--settings", " same, shipped", "--targets", "go-sdk,mcpstream"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{
		"same":    {"go-sdk": 200, "mcpstream": 200},
		"shipped": {"go-sdk": 100, "mcpstream": 400},
	}
	if got := gogcOf(o); !reflect.DeepEqual(got, want) || o.settings[0].name != "same" || o.rounds != 2 {
		t.Errorf("settings %v (first %s), rounds %d; want %v (first same), 2", got, o.settings[0].name, o.rounds, want)
	}
	for _, args := range [][]string{
		{"--rounds", "0"},
		{"--gogc", "0"},
		{"--gogc", "-1"},
		{"--settings", "fastest"},
		{"--settings", "same,same"},
		{"--settings", ","},
		{"--targets", "nginx"},
		{"--targets", ""},
		{"--args", "{"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

// TestRoundOrder: every target under every setting once a round, a target
// at a GC target it already ran at in the round not again, every other
// round reversed.
func TestRoundOrder(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mcpstream GOGC=400", "mcp-go GOGC=100", "go-sdk GOGC=100", "mcp-go GOGC=400", "go-sdk GOGC=400"}
	for r := 1; r <= 3; r++ {
		w := slices.Clone(want)
		if r == 2 {
			slices.Reverse(w)
		}
		if got := keyNames(roundOrder(o.settings, o.targets, r)); !slices.Equal(got, w) {
			t.Errorf("round %d: %v, want %v", r, got, w)
		}
	}
	o, err = parseFlags([]string{"--gogc", "200"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"mcpstream GOGC=400", "mcp-go GOGC=100", "go-sdk GOGC=100", "mcpstream GOGC=200", "mcp-go GOGC=200", "go-sdk GOGC=200"}
	if got := keyNames(roundOrder(o.settings, o.targets, 1)); !slices.Equal(got, want) {
		t.Errorf("--gogc 200: %v, want %v", got, want)
	}
}

func keyNames(keys []runKey) []string {
	var names []string
	for _, k := range keys {
		names = append(names, k.String())
	}
	return names
}

func TestServerEnv(t *testing.T) {
	env := serverEnv([]string{"PATH=/bin", "GOGC=off", "HOME=/root", "GOGC=50", "XGOGC=1"}, 250)
	if want := []string{"PATH=/bin", "HOME=/root", "XGOGC=1", "GOGC=250"}; !slices.Equal(env, want) {
		t.Errorf("serverEnv = %v, want %v", env, want)
	}
}

func TestReportedGOGC(t *testing.T) {
	for _, c := range []struct {
		groups []string
		want   string
	}{
		{[]string{"http://127.0.0.1:1/mcp"}, "none"},
		{[]string{"127.0.0.1:1", "250"}, "250"},
		{[]string{"127.0.0.1:1", "off"}, "-1"},
		{[]string{"127.0.0.1:1", "lots"}, "error"},
	} {
		v, err := reportedGOGC(c.groups)
		got := "none"
		switch {
		case err != nil:
			got = "error"
		case v != nil:
			got = fmt.Sprint(*v)
		}
		if got != c.want {
			t.Errorf("reportedGOGC(%q) = %s, want %s", c.groups, got, c.want)
		}
	}
}

// TestServersRunAtTheGCTargetAsked runs the harness for real against the
// plain servers (the test binary re-executed), with a GOGC in its own
// environment that neither setting asks for: each server must report the
// GC target of its setting, the runs must interleave, and the JSON report
// and the chart must come out.
func TestServersRunAtTheGCTargetAsked(t *testing.T) {
	t.Setenv("GOGC", "37")
	dir := t.TempDir()
	jsonPath, chartPath := filepath.Join(dir, "compare.json"), filepath.Join(dir, "compare.png")
	var stdout, stderr strings.Builder
	code := compare([]string{"--targets", "mcp-go,go-sdk", "--gogc", "250", "--rounds", "2", "--sessions", "2",
		"--duration", "200ms", "--warmup", "0s", "--no-progress", "--json", jsonPath, "--chart", chartPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("compare exited with %d:\n%s", code, stderr.String())
	}
	var rep struct {
		Workload struct {
			Rounds     int `json:"rounds"`
			CommonGOGC int `json:"common_gogc"`
		} `json:"workload"`
		Settings []struct {
			Name    string         `json:"name"`
			GOGC    map[string]int `json:"gogc"`
			Targets []struct {
				Target string `json:"target"`
				GOGC   int    `json:"gogc"`
				Rounds []int  `json:"rounds"`
			} `json:"targets"`
		} `json:"settings"`
		Runs []struct {
			Round        int    `json:"round"`
			Target       string `json:"target"`
			GOGC         int    `json:"gogc"`
			ReportedGOGC *int   `json:"reported_gogc"`
			Response     string `json:"response"`
			Result       struct {
				OK int64 `json:"ok"`
			} `json:"result"`
		} `json:"runs"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v in\n%s", err, b)
	}
	var order []string
	for _, r := range rep.Runs {
		order = append(order, fmt.Sprintf("%d %s GOGC=%d", r.Round, r.Target, r.GOGC))
		if r.ReportedGOGC == nil || *r.ReportedGOGC != r.GOGC {
			t.Errorf("round %d: %s started at GOGC=%d reports %v", r.Round, r.Target, r.GOGC, r.ReportedGOGC)
		}
		if want := map[string]string{"mcp-go": "application/json", "go-sdk": "application/json"}[r.Target]; r.Response != want {
			t.Errorf("%s answered with %q, want %q", r.Target, r.Response, want)
		}
		if r.Result.OK == 0 {
			t.Errorf("round %d: %s: no successful call", r.Round, r.Target)
		}
	}
	wantOrder := []string{
		"1 mcp-go GOGC=100", "1 go-sdk GOGC=100", "1 mcp-go GOGC=250", "1 go-sdk GOGC=250",
		"2 go-sdk GOGC=250", "2 mcp-go GOGC=250", "2 go-sdk GOGC=100", "2 mcp-go GOGC=100",
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("runs %q, want %q", order, wantOrder)
	}
	if rep.Workload.Rounds != 2 || rep.Workload.CommonGOGC != 250 || len(rep.Settings) != 2 {
		t.Fatalf("workload %+v, %d settings; want 2 rounds at 250, 2 settings", rep.Workload, len(rep.Settings))
	}
	for _, s := range rep.Settings {
		for _, row := range s.Targets {
			if row.GOGC != s.GOGC[row.Target] || !slices.Equal(row.Rounds, []int{1, 2}) {
				t.Errorf("setting %s: %s at GOGC=%d over rounds %v, want GOGC=%d over [1 2]", s.Name, row.Target, row.GOGC, row.Rounds, s.GOGC[row.Target])
			}
		}
	}
	out := stdout.String()
	for _, want := range []string{
		`(?m)^\(a\) each server at its shipped GC target: mcp-go GOGC=100 \(Go's default\), go-sdk GOGC=100 \(Go's default\)$`,
		`(?m)^\(b\) every server at the same GC target, GOGC=250 \(--gogc\)$`,
		`(?m)^\s+mcp-go\s+100\s+json\s+\d+`,
		`(?m)^\s+go-sdk\s+250\s+json\s+\d+`,
		`by mcp-go and go-sdk with application/json \(one JSON body\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no match for %s in\n%s", want, out)
		}
	}
	checkPNG(t, chartPath, 2)
}

// checkPNG checks that path holds a PNG of panels panels side by side.
func checkPNG(t *testing.T, path string, panels int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// A panel is 6.5 by 5 inches.
	if got, want := float64(cfg.Width)/float64(cfg.Height), 6.5*float64(panels)/5; got < want*0.95 || got > want*1.05 {
		t.Errorf("chart %dx%d: aspect %.2f, want %.2f (%d panels)", cfg.Width, cfg.Height, got, want, panels)
	}
}

// result is a measured run with the given throughput over a 1 s window,
// p99 and server CPU a call.
func result(label string, throughput float64, p99 time.Duration, serverPerCall time.Duration) *bench.Result {
	calls := int64(throughput)
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return &bench.Result{Config: bench.Config{Label: label, Duration: time.Second}, Calls: calls, OK: calls,
		Throughput: throughput, P50: p99 / 4, P90: p99 / 2, P99: p99, P999: 2 * p99,
		ServerCPU: time.Duration(calls) * serverPerCall, Start: start, End: start.Add(time.Second)}
}

// syntheticReport is a report of three rounds with figures chosen so that
// medians, ranges and ratios are known.
func syntheticReport(t *testing.T, args ...string) *report {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep := newReport(o)
	type fig struct {
		tput []float64
		p99  []time.Duration
		us   []time.Duration
		ct   string
	}
	figs := map[runKey]fig{
		{"mcpstream", 400}: {[]float64{10000, 9000, 11000}, []time.Duration{16e6, 15e6, 18e6}, []time.Duration{128e3, 144e3, 120e3}, "application/json"},
		{"mcp-go", 100}:    {[]float64{15000, 14000, 16000}, []time.Duration{14e6, 15e6, 13e6}, []time.Duration{80e3, 80e3, 80e3}, "application/json"},
		{"go-sdk", 100}:    {[]float64{3500, 3000, 4000}, []time.Duration{80e6, 90e6, 70e6}, []time.Duration{400e3, 420e3, 380e3}, "text/event-stream"},
		{"mcp-go", 400}:    {[]float64{17000, 16000, 18000}, []time.Duration{12e6, 13e6, 11e6}, []time.Duration{70e3, 70e3, 70e3}, "application/json"},
		{"go-sdk", 400}:    {[]float64{7000, 6000, 8000}, []time.Duration{40e6, 45e6, 35e6}, []time.Duration{200e3, 210e3, 190e3}, "text/event-stream"},
	}
	for r := 1; r <= 3; r++ {
		for _, k := range roundOrder(o.settings, o.targets, r) {
			f, ok := figs[k]
			if !ok {
				continue
			}
			rep.Runs = append(rep.Runs, &run{Round: r, Target: k.target, GOGC: k.gogc, Response: f.ct,
				Result: result(k.target, f.tput[r-1], f.p99[r-1], f.us[r-1])})
		}
	}
	rep.finish()
	return rep
}

// TestWriteSummary: a table per setting with each server's GC target and
// response type, each figure's median and range over the rounds, and
// mcpstream's throughput and CPU a call over each server's, taken within
// each round; the notes say that echo is read-only and who answered how.
func TestWriteSummary(t *testing.T) {
	rep := syntheticReport(t)
	var b strings.Builder
	writeSummary(&b, rep)
	out := b.String()
	// Within each round, mcpstream over mcp-go at 100: 10000/15000,
	// 9000/14000, 11000/16000 = 0.667, 0.643, 0.688; CPU 128/80, 144/80,
	// 120/80 = 1.6, 1.8, 1.5. Over go-sdk at 100: 2.86, 3.00, 2.75; CPU
	// 0.32, 0.34, 0.32. Over go-sdk at 400: 1.43, 1.50, 1.38; CPU 0.64,
	// 0.69, 0.63.
	shipped := section(t, out, "(a) each server at its shipped GC target: mcpstream GOGC=400 (the binary's own default), mcp-go GOGC=100 (Go's default), go-sdk GOGC=100 (Go's default)")
	same := section(t, out, "(b) every server at the same GC target, GOGC=400 (--gogc)")
	for _, c := range []struct{ in, want string }{
		{shipped, `(?m)^\s+mcpstream\s+400\s+json\s+10000 \[9000-11000\]\s+4\.00 \[3\.75-4\.50\]\s+16\.0 \[15\.0-18\.0\]\s+32\.0 \[30\.0-36\.0\]\s+0\s+128 \[120-144\]\s+1\.00x\s+1\.00x$`},
		{shipped, `(?m)^\s+mcp-go\s+100\s+json\s+15000 \[14000-16000\]\s+.*\s80\s+0\.67x \[0\.64-0\.69\]\s+1\.60x \[1\.50-1\.80\]$`},
		{shipped, `(?m)^\s+go-sdk\s+100\s+sse\s+3500 \[3000-4000\]\s+20\.0 \[17\.5-22\.5\]\s+80\.0 \[70\.0-90\.0\]\s+160 \[140-180\]\s+0\s+400 \[380-420\]\s+2\.86x \[2\.75-3\.00\]\s+0\.32x \[0\.32-0\.34\]$`},
		{same, `(?m)^\s+mcpstream\s+400\s+json\s+10000 \[9000-11000\]`},
		{same, `(?m)^\s+go-sdk\s+400\s+sse\s+7000 \[6000-8000\]\s+.*\s+1\.43x \[1\.38-1\.50\]\s+0\.64x \[0\.63-0\.69\]$`},
		{out, `(?m)^tool: echo is read-only \(readOnlyHint\), mcpstream's cheapest path: its worker writes no result to the result bucket`},
		{out, `(?m)^responses: .* by mcpstream and mcp-go with application/json \(one JSON body\), by go-sdk with text/event-stream \(an event stream\)$`},
		{out, `(?m)^mcpstream ships with GOGC=400, the common target: its one run a round serves both settings$`},
		{out, `(?m)^rounds: 3 of 3, interleaved`},
		{out, `(?m)^figures: median \[min-max\] over the rounds; a ratio is mcpstream's figure over the target's, taken within each round`},
		{out, `(?m)^\s+2\s+9000 \(144\)\s+14000 \(80\)\s+16000 \(70\)\s+3000 \(420\)\s+6000 \(210\)$`},
	} {
		if !regexp.MustCompile(c.want).MatchString(c.in) {
			t.Errorf("no line matching %s in\n%s", c.want, c.in)
		}
	}
	if regexp.MustCompile(`(?m)^\s+(mcp-go|go-sdk)\s+100\s`).MatchString(same) ||
		regexp.MustCompile(`(?m)^\s+(mcp-go|go-sdk)\s+400\s`).MatchString(shipped) {
		t.Errorf("a setting's table holds another's runs:\n%s", out)
	}
}

// section is the part of out from the line head to the next blank line
// after the table that follows it.
func section(t *testing.T, out, head string) string {
	t.Helper()
	i := strings.Index(out, "\n"+head+"\n")
	if i < 0 {
		t.Fatalf("no heading %q in\n%s", head, out)
	}
	rest := out[i+len(head)+3:] // the heading, its newline and the blank line after it
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestWriteSummaryPartial: a run cut short in a round leaves that round out
// of the ratios it would take part in, and another tool gets no read-only
// note.
func TestWriteSummaryPartial(t *testing.T) {
	rep := syntheticReport(t, "--tool", "add", "--settings", "shipped")
	var kept []*run
	for _, r := range rep.Runs {
		if r.Round != 3 || r.Target != "mcpstream" {
			kept = append(kept, r)
		}
	}
	rep.Runs = kept
	rep.finish()
	var b strings.Builder
	writeSummary(&b, rep)
	out := b.String()
	for _, want := range []string{
		`(?m)^\s+mcpstream\s+400\s+json\s+9500 \[9000-10000\]`,
		`(?m)^\s+mcp-go\s+100\s+json\s+15000 \[14000-16000\].*\s0\.65x \[0\.64-0\.67\]\s+1\.70x \[1\.60-1\.80\]$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no line matching %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "read-only") || strings.Contains(out, "(b)") || strings.Contains(out, "serves both settings") {
		t.Errorf("a note or a setting that does not apply:\n%s", out)
	}
}

func TestChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := writeChart(path, syntheticReport(t)); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 2)
	if err := writeChart(path, syntheticReport(t, "--settings", "same")); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 1)
}
