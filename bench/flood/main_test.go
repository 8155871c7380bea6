package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/bench"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.rate != 200 || o.burst != 50 || o.quietRate != 100 || o.floodSessions != 64 || o.floodRate != 2000 ||
		o.maxRatio != 2 || !o.unlimited || o.rounds != 1 || o.gogc != 400 || o.auth != authHeader || o.duration != 20*time.Second {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"--auth", "api-keys", "--rate", "500", "--burst", "10", "--flood-rate", "5000",
		"--max-ratio", "3", "--unlimited=false", "--server-args", " --debug-addr  127.0.0.1:6060 "}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.auth != authAPIKeys || o.rate != 500 || o.burst != 10 || o.floodRate != 5000 || o.maxRatio != 3 || o.unlimited ||
		!slices.Equal(o.serverArgs, []string{"--debug-addr", "127.0.0.1:6060"}) {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{"--auth", "jwt"}, {"--principal-header", " "}, {"--rate", "0"}, {"--burst", "0"},
		{"--quiet-rate", "200"}, {"--quiet-rate", "0"}, {"--flood-sessions", "0"}, {"--flood-rate", "-1"},
		{"--duration", "0s"}, {"--rounds", "0"}, {"--max-ratio", "0.5"}, {"--gogc", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

// result is a bench result with p99 and the given errors.
func result(p99 time.Duration, errors map[string]int) *bench.Result {
	r := &bench.Result{Calls: 1000, OK: 1000, P50: p99 / 2, P99: p99, Errors: errors}
	for _, n := range errors {
		r.OK -= int64(n)
	}
	return r
}

func TestJudge(t *testing.T) {
	o := &options{maxRatio: 2, rounds: 1, rate: 200, burst: 50, duration: 10 * time.Second}
	floodRes := result(time.Millisecond, map[string]int{bench.KindHTTP429: 5000})
	floodRes.Throughput = 205
	held := result(300*time.Millisecond, nil) // no 429: held to the rate
	held.Throughput = 199
	leaked := result(time.Millisecond, map[string]int{bench.KindHTTP429: 50})
	leaked.Throughput = 400
	phases := func(base, flooded *bench.Result, fl *bench.Result) []*phase {
		return []*phase{{Name: phaseBaseline, Round: 1, Limited: true, Quiet: base}, {Name: phaseFlood, Round: 1, Limited: true, Quiet: flooded, Flood: fl}}
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		phases []*phase
		ratio  float64
		pass   bool
		reason string
	}{
		{"within", phases(result(10*ms, nil), result(19*ms, nil), floodRes), 1.9, true, ""},
		{"at the bound", phases(result(10*ms, nil), result(20*ms, nil), floodRes), 2, true, ""},
		{"beyond", phases(result(10*ms, nil), result(21*ms, nil), floodRes), 2.1, false, "2.10x its baseline"},
		{"quiet errors", phases(result(10*ms, nil), result(10*ms, map[string]int{"http-503": 3}), floodRes), 1, false, "quiet saw 3 errors"},
		{"never refused", phases(result(10*ms, nil), result(10*ms, nil), result(ms, nil)), 1, false, "never refused"},
		{"held to the rate", phases(result(10*ms, nil), result(10*ms, nil), held), 1, true, ""},
		{"beyond the limit", phases(result(10*ms, nil), result(10*ms, nil), leaked), 1, false, "beyond the limit"},
		{"no baseline call", phases(&bench.Result{}, result(10*ms, nil), floodRes), 0, false, "no p99"},
		{"no flood", phases(result(10*ms, nil), result(10*ms, nil), floodRes)[:1], 0, false, "no round has both"},
	} {
		v := judge(o, tc.phases)
		if v.Pass != tc.pass || (v.Ratio-tc.ratio) > 1e-9 || (tc.ratio-v.Ratio) > 1e-9 {
			t.Errorf("%s: pass %v ratio %v, want %v %v (failures %q)", tc.name, v.Pass, v.Ratio, tc.pass, tc.ratio, v.Failures)
		}
		if tc.reason != "" && !strings.Contains(strings.Join(v.Failures, "; "), tc.reason) {
			t.Errorf("%s: failures %q, want one saying %q", tc.name, v.Failures, tc.reason)
		}
	}
	// The phase without the limit is a contrast: its ratio is reported,
	// never judged.
	ph := append(phases(result(10*ms, nil), result(12*ms, nil), floodRes),
		&phase{Name: phaseUnlimited, Round: 1, Quiet: result(100*ms, map[string]int{"http-503": 9}), Flood: result(50*ms, nil)})
	if v := judge(o, ph); !v.Pass || v.UnlimitedRatio != 10 {
		t.Errorf("with the unlimited phase: pass %v, unlimited ratio %v; want true, 10 (failures %q)", v.Pass, v.UnlimitedRatio, v.Failures)
	}
	// Rounds: the verdict is the median of the rounds' ratios, so one
	// round hit by the machine's drift does not decide it.
	var rounds []*phase
	for i, p99 := range []time.Duration{30 * ms, 15 * ms, 12 * ms} {
		rounds = append(rounds, &phase{Name: phaseBaseline, Round: i + 1, Limited: true, Quiet: result(10*ms, nil)},
			&phase{Name: phaseFlood, Round: i + 1, Limited: true, Quiet: result(p99, nil), Flood: floodRes})
	}
	if v := judge(o, rounds); !v.Pass || v.Ratio != 1.5 || !slices.Equal(v.Ratios, []float64{3, 1.5, 1.2}) {
		t.Errorf("3 rounds: pass %v, ratio %v of %v; want true, 1.5 of [3 1.5 1.2] (failures %q)", v.Pass, v.Ratio, v.Ratios, v.Failures)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 = %v, want 2.5", m)
	}
}

func TestCovers(t *testing.T) {
	t0 := time.Now()
	at := func(start time.Duration, d time.Duration) *bench.Result {
		return &bench.Result{Start: t0.Add(start), Config: bench.Config{Duration: d}}
	}
	quiet := at(time.Second, 10*time.Second)
	for _, tc := range []struct {
		flood *bench.Result
		want  bool
	}{
		{at(0, 12*time.Second), true},
		{at(time.Second, 10*time.Second), true},
		{at(1500*time.Millisecond, 12*time.Second), false}, // starts after quiet
		{at(0, 10*time.Second), false},                     // ends before quiet
	} {
		if got := covers(tc.flood, quiet); got != tc.want {
			t.Errorf("covers(flood from %v for %v) = %v, want %v", tc.flood.Start.Sub(t0), tc.flood.Config.Duration, got, tc.want)
		}
	}
}

// TestCredentials: header principals send the header (the probe none);
// API keys are written so that the gateway's reader takes each principal's
// bearer key for that principal.
func TestCredentials(t *testing.T) {
	o := &options{auth: authHeader, header: "x-who", gogc: 400, rate: 200, burst: 50}
	c, err := newCredentials(o, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.headers[quietPrincipal].Get("X-Who"); got != quietPrincipal || c.headers[probePrincipal] != nil {
		t.Errorf("header credentials: quiet sends %q, probe %v", got, c.headers[probePrincipal])
	}
	argv, err := serverArgv(o, "mcpstream", c, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "mcpstream dev --addr 127.0.0.1:0 --log-level warn --gc-percent 400 --principal-header x-who --principal-rate 200 --principal-burst 50"
	if got := strings.Join(argv, " "); got != want {
		t.Errorf("argv = %s\nwant   %s", got, want)
	}
	if argv, _ = serverArgv(o, "mcpstream", c, false); slices.Contains(argv, "--principal-rate") {
		t.Errorf("argv without the limit = %q", argv)
	}

	o.auth = authAPIKeys
	c, err = newCredentials(o, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.serverArgs) != 2 || c.serverArgs[0] != "--api-keys" {
		t.Fatalf("server args %q, want --api-keys FILE", c.serverArgs)
	}
	keys, err := auth.LoadAPIKeys(c.serverArgs[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{quietPrincipal, floodPrincipal, probePrincipal} {
		r := httptest.NewRequest("POST", "/mcp", nil)
		r.Header = c.headers[p].Clone()
		if got, err := keys.Authenticate(r); got != p || err != nil {
			t.Errorf("%s's key authenticates as %q, %v", p, got, err)
		}
	}
}

func TestWriteReport(t *testing.T) {
	o := &options{maxRatio: 2, rate: 200, burst: 50, auth: authHeader, duration: 10 * time.Second, gogc: 400, rounds: 1}
	ms := time.Millisecond
	fl := result(ms, map[string]int{bench.KindHTTP429: 9000})
	fl.Config = bench.Config{Sessions: 64, Duration: 10 * time.Second}
	fl.Offered, fl.Throughput, fl.RefusedP50, fl.RefusedP99 = 1000, 200, ms/4, ms
	phases := []*phase{{Name: phaseBaseline, Round: 1, Limited: true, Quiet: result(4*ms, nil)},
		{Name: phaseFlood, Round: 1, Limited: true, Quiet: result(12*ms, nil), Flood: fl}}
	v := judge(o, phases)
	var b bytes.Buffer
	writeReport(&b, o, phases, v, [2]string{"0.50", "1.20"})
	for _, s := range []string{"quiet p99: baseline 4.000 ms, under the flood 12.00 ms: 3.00x\n",
		"quiet's p99 under the flood over its baseline: 3.00x (max 2x): FAIL",
		"200/s admitted (limit 200/s) in p50 0.500 ms, p99 1.000 ms, 900/s refused with 429", "closed, 64 sessions", "server GOGC=400", "load average 0.50 before, 1.20 after"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
	if strings.Contains(b.String(), "note: the load average") {
		t.Errorf("a note of a busy machine at load 1.20:\n%s", b.String())
	}
	b.Reset()
	writeReport(&b, o, phases, v, [2]string{"0.50", "99"})
	if !strings.Contains(b.String(), "note: the load average exceeded") {
		t.Errorf("no note of a busy machine at load 99:\n%s", b.String())
	}
	b.Reset()
	if err := writeJSON(&b, o, phases, v, [2]string{"0.50", "1.20"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Phases  []json.RawMessage `json:"phases"`
		Verdict verdict           `json:"verdict"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got.Phases) != 2 || got.Verdict.Ratio != 3 || got.Verdict.Pass {
		t.Errorf("JSON: %v, %d phases, verdict %+v\n%s", err, len(got.Phases), got.Verdict, b.String())
	}
}

func TestHeaderLines(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer k1"}, "X-Principal": {"flood"}}
	got, err := parseHeader(formatHeader(h))
	if err != nil || len(got) != 2 || got.Get("Authorization") != "Bearer k1" || got.Get("X-Principal") != "flood" {
		t.Errorf("round trip of %v: %v, %v", h, got, err)
	}
	if got, err := parseHeader(""); err != nil || len(got) != 0 {
		t.Errorf("no header: %v, %v", got, err)
	}
	if _, err := parseHeader("no colon\n"); err == nil {
		t.Error("a line without a colon: no error")
	}
}
