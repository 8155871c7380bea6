package main

import (
	"io"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/bench"
)

// TestRSSTarget: the RSS target is judged on the samples after the first
// 10 s; a run without any is not met, rather than met by two zeros.
func TestRSSTarget(t *testing.T) {
	steady := []float64{10, 20, 30, 40, 50, 55, 56, 57, 58, 59, 60, 61, 62, 60}
	grows := append(append([]float64{}, steady[:10]...), 60, 64, 68, 72)
	for _, c := range []struct {
		name    string
		samples []float64
		met     bool
		says    string
	}{
		{"short run", steady[:10], false, "not measured"},
		{"steady after 10 s", steady, true, "60-62 MiB (+3.3%)"},
		{"growing after 10 s", grows, false, "60-72 MiB (+20.0%)"},
	} {
		lo, hi := rssRange(c.samples, 10)
		got := rssTarget("gateway", lo, hi)
		if got.Met != c.met || !strings.Contains(got.Measured, c.says) {
			t.Errorf("%s: %+v, want met %v and %q", c.name, got, c.met, c.says)
		}
	}
}

func TestGCSetting(t *testing.T) {
	if got := gcSetting(""); !strings.Contains(got, "400") || !strings.Contains(got, "100") {
		t.Errorf("GOGC unset: %q, want the servers' 400 and the driver's 100 named", got)
	}
	if got := gcSetting("off"); !strings.HasSuffix(got, "GOGC=off") {
		t.Errorf("GOGC=off: %q, want the setting named", got)
	}
}

// TestParseFlags: bad flags are refused with a message that names them.
func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--via", "y"}, `--via "y"`},
		{[]string{"--fast-via", "gateway"}, `--fast-via "gateway"`},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--duration", "soon"}, "-duration"},
	} {
		var stderr strings.Builder
		if _, err := parseFlags(c.args, &stderr); err == nil || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("%q: error %v, stderr %q; want an error naming %s", c.args, err, stderr.String(), c.says)
		}
	}
	o, err := parseFlags([]string{"--fast-via", "dev"}, io.Discard)
	if err != nil || o.fastVia != "dev" || o.via != "gateway" {
		t.Errorf("--fast-via dev: %+v, %v", o, err)
	}
}

// TestFairTarget: three gateways are fair when each admitted within 20% of
// an equal share of their total.
func TestFairTarget(t *testing.T) {
	for _, c := range []struct {
		each []float64
		met  bool
	}{
		{[]float64{272, 231, 268}, true},
		{[]float64{270, 65, 435}, false},
		{[]float64{0, 0, 0}, false},
	} {
		var spread []*bench.Result
		for _, v := range c.each {
			spread = append(spread, &bench.Result{Throughput: v})
		}
		if got := fairTarget(spread); got.Met != c.met {
			t.Errorf("%v: %+v, want met %v", c.each, got, c.met)
		}
	}
}
