package main

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes(" 25,100, ,1000,10000")
	if err != nil || !slices.Equal(got, []int{25, 100, 1000, 10000}) {
		t.Fatalf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "0", "-5", "10,x"} {
		if got, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--sizes", "10,20", "--fraction", "0.25", "--p99", "15ms", "--server-cpus", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.sizes, []int{10, 20}) || o.fraction != 0.25 || o.target != 15*time.Millisecond || o.serverCPUs != "1" {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{"--fraction", "0"}, {"--fraction", "1.5"}, {"--rate", "-1"}, {"--sizes", "a"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

// TestWriteTable: a row per size, its server CPU a call ("-" when not
// measured) and whether p99 and errors met the target.
func TestWriteTable(t *testing.T) {
	o := &options{target: 20 * time.Millisecond, duration: time.Second, capSessions: 64, fraction: 0.5}
	at := func(sessions int, p99, server time.Duration) *bench.Result {
		return &bench.Result{Config: bench.Config{Sessions: sessions}, Calls: 1000, OK: 1000, Offered: 1000, Throughput: 1000,
			P50: time.Millisecond, P99: p99, ServerCPU: server}
	}
	var b strings.Builder
	writeTable(&b, o, 2000, []*bench.Result{at(25, 5*time.Millisecond, 250*time.Millisecond), at(100, 30*time.Millisecond, 0)})
	for _, row := range []string{`(?m)^\s+25\s+1000\s+1000 .* 250\s+yes$`, `(?m)^\s+100\s+1000\s+1000 .* -\s+no$`, `server us/call`} {
		if !regexp.MustCompile(row).MatchString(b.String()) {
			t.Errorf("no line matching %s in\n%s", row, b.String())
		}
	}
}
