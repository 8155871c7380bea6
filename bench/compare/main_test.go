package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// TestWriteTable: a row per target with its server CPU a call and
// mcpstream's throughput over the target's.
func TestWriteTable(t *testing.T) {
	o := &options{cfg: bench.Config{Sessions: 64, Duration: time.Second, Tool: "echo"}}
	row := func(label string, throughput float64, server time.Duration) *bench.Result {
		return &bench.Result{Config: bench.Config{Label: label}, Calls: int64(throughput), OK: int64(throughput),
			Throughput: throughput, P50: time.Millisecond, P99: 9 * time.Millisecond, ServerCPU: server}
	}
	var b strings.Builder
	writeTable(&b, o, []*bench.Result{row("mcpstream", 12000, 1200*time.Millisecond), row("go-sdk", 3000, 0)})
	for _, want := range []string{`(?m)^\s+mcpstream\s+12000 .* 100\s+1\.00x$`, `(?m)^\s+go-sdk\s+3000 .* -\s+4\.00x$`} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("no line matching %s in\n%s", want, b.String())
		}
	}
}
