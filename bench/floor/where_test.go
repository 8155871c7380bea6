package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/mcpstream/mcpstream/bench/internal/proc"
)

func TestComponent(t *testing.T) {
	const (
		gw  = "github.com/mcpstream/mcpstream/gateway."
		wk  = "github.com/mcpstream/mcpstream/workers."
		nc  = "github.com/nats-io/nats%2ego."
		srv = "github.com/nats-io/nats-server/v2/server."
	)
	for _, tc := range []struct {
		name  string
		stack []string // leaf first
		want  string
	}{
		{"gateway's handler, in a library", []string{"runtime.mallocgc", "github.com/mcpstream/mcpstream/schema.DecodeMessage", gw + "(*Gateway).post", "net/http.serverHandler.ServeHTTP", "net/http.(*conn).serve", "runtime.goexit"}, compGateway},
		{"gateway's publish", []string{nc + "(*Conn).publish", gw + "(*Gateway).publishAndWait", "net/http.(*conn).serve", "runtime.goexit"}, compGateway},
		{"gateway's admission", []string{"github.com/mcpstream/mcpstream/gateway/internal/admission.(*Controller).Admit", "net/http.(*conn).serve"}, compGateway},
		{"gateway's reply routing", []string{gw + "(*router).deliver", nc + "(*Conn).waitForMsgs", "runtime.goexit"}, compGateway},
		{"worker's pool", []string{"runtime.newobject", wk + "(*runner).process", wk + "(*Group).Run.func2", "runtime.goexit"}, compWorker},
		{"worker's callback", []string{wk + "(*runner).hand", "github.com/nats-io/nats.go/jetstream.(*pullConsumer).Consume.func1", nc + "(*Conn).waitForMsgs"}, compWorker},
		{"joined's handler, inlined", []string{"main.(*joined).call", "main.serveJoined.rpcHandler.func1", "net/http.HandlerFunc.ServeHTTP", "net/http.(*conn).serve"}, compGateway},
		{"joined's publish", []string{nc + "(*Conn).PublishMsg", "main.(*pipeline).publish", "main.(*joined).call"}, compGateway},
		{"joined's acknowledgements", []string{"main.jetstreamAck", "main.(*pipeline).ack", nc + "(*Conn).waitForMsgs"}, compGateway},
		{"joined's worker", []string{nc + "(*Conn).publish", "main.(*pipeline).work", "github.com/nats-io/nats.go/jetstream.(*pullConsumer).Consume.func1", nc + "(*Conn).waitForMsgs"}, compWorker},
		{"NATS client's reads from an in-process pipe", []string{"net.(*pipe).Read", nc + "(*natsReader).Read", nc + "(*Conn).readLoop", "runtime.goexit"}, compClient},
		{"NATS client's pull", []string{"github.com/nats-io/nats.go/jetstream.(*pullSubscription).pull", "runtime.goexit"}, compClient},
		{"the response's write", []string{"syscall.write", "net.(*conn).Write", "net/http.(*response).finishRequest", "net/http.(*conn).serve", "runtime.goexit"}, compHTTP},
		{"a background read", []string{"internal/poll.(*FD).Read", "net.(*conn).Read", "net/http.(*connReader).backgroundRead"}, compHTTP},
		{"the stream's store", []string{"syscall.pwrite", srv + "(*fileStore).StoreMsg", srv + "(*stream).internalLoop", "runtime.goexit"}, compServer},
		{"GC marking", []string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker", "runtime.goexit"}, compGC},
		{"GC sweeping", []string{"runtime.sweepone", "runtime.bgsweep", "runtime.goexit"}, compGC},
		{"the scheduler", []string{"runtime.futex", "runtime.findRunnable", "runtime.schedule", "runtime.park_m", "runtime.mcall"}, compSched},
		{"a timer's callback", []string{"net.(*pipeDeadline).set.func1", "time.goFunc", "runtime.goexit"}, compOther},
		{"nothing known", []string{"runtime.main", "main.main"}, compOther},
		{"no stack", nil, compOther},
	} {
		if got := component(tc.stack); got != tc.want {
			t.Errorf("%s: component = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// writeProfile writes a CPU profile of the stacks (leaf first), each
// sampled n times at 10 ms, to a file in dir and returns its path.
func writeProfile(t *testing.T, dir, name string, stacks map[string]int64) string {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10e6,
	}
	funcs := map[string]*profile.Function{}
	for stack, n := range stacks {
		var locs []*profile.Location
		for fn := range strings.SplitSeq(stack, " < ") {
			f := funcs[fn]
			if f == nil {
				f = &profile.Function{ID: uint64(len(p.Function) + 1), Name: fn}
				funcs[fn] = f
				p.Function = append(p.Function, f)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{n, n * 10e6}})
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	joined := writeProfile(t, dir, "joined.pprof", map[string]int64{
		"main.(*joined).call < main.serveJoined.rpcHandler.func1 < net/http.(*conn).serve": 20,
		"syscall.write < net/http.(*response).finishRequest < net/http.(*conn).serve":      60,
		"main.(*pipeline).work < github.com/nats-io/nats%2ego.(*Conn).waitForMsgs":         20,
	})
	dev := writeProfile(t, dir, "dev.pprof", map[string]int64{
		"github.com/mcpstream/mcpstream/gateway.(*Gateway).post < net/http.(*conn).serve":  30,
		"syscall.write < net/http.(*response).finishRequest < net/http.(*conn).serve":      50,
		"github.com/mcpstream/mcpstream/workers.(*runner).process < runtime.goexit":        15,
		"runtime.scanobject < runtime.gcBgMarkWorker < runtime.goexit":                     5,
		"github.com/nats-io/nats-server/v2/server.(*stream).internalLoop < runtime.goexit": 0,
	})
	r := &report{Runs: []run{
		{Round: 1, Part: partJoined, CPUPerCallUs: 999},
		{Round: 2, Part: partJoined, CPUPerCallUs: 50},
		{Round: 2, Part: partMcpstream, CPUPerCallUs: 80},
	}}
	if err := r.split(2, joined, dev); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{
		compGateway: {10, 24}, compHTTP: {30, 40}, compWorker: {10, 12}, compGC: {0, 4},
		compClient: {0, 0}, compServer: {0, 0}, compSched: {0, 0}, compOther: {0, 0},
	}
	if len(r.Where) != len(components) || r.WhereRound != 2 {
		t.Fatalf("split: %d rows of round %d, want %d of round 2", len(r.Where), r.WhereRound, len(components))
	}
	for i, row := range r.Where {
		w := want[row.Component]
		if row.Component != components[i] || math.Abs(row.JoinedUs-w[0]) > 1e-9 || math.Abs(row.McpstreamUs-w[1]) > 1e-9 {
			t.Errorf("row %d: %+v, want %s %v", i, row, components[i], w)
		}
	}
	var out bytes.Buffer
	r.writeWhere(&out)
	for _, line := range []string{"round 2's profiles", "gateway: handler, reply routing", "total                                    50.0       80.0    +30.0"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}

	if err := r.split(1, joined, dev); err == nil {
		t.Error("split of a round without mcpstream: no error")
	}
	if err := r.split(2, joined, filepath.Join(dir, "none.pprof")); err == nil {
		t.Error("split with a missing profile: no error")
	}
	notCPU := filepath.Join(dir, "heap.pprof")
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}
	f, err := os.Create(notCPU)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := r.split(2, notCPU, dev); err == nil || !strings.Contains(err.Error(), "not a CPU profile") {
		t.Errorf("split of a heap profile: %v, want not a CPU profile", err)
	}
}

// TestServeProfiles: serve-joined's --debug-addr serves a CPU profile
// of the window asked for, which the split reads, and stops serving when
// told.
func TestServeProfiles(t *testing.T) {
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	stop, err := serveProfiles(addr)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cpu.pprof")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := proc.Fetch(ctx, "http://"+addr+"/debug/pprof/profile?seconds=1", out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(p.SampleType, func(v *profile.ValueType) bool { return v.Type == "cpu" }); i < 0 {
		t.Errorf("sample types %v, want cpu", p.SampleType)
	}
	stop()
	if err := proc.Fetch(ctx, "http://"+addr+"/debug/pprof/profile?seconds=1", out); err == nil {
		t.Error("profiles still served after stop")
	}
}
