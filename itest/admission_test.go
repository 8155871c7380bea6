package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/workers"
)

// openCall is one call of an open loop: when it was due, how long it took
// from then, and how it was answered.
type openCall struct {
	tool    string
	latency time.Duration
	status  int
	code    int    // the JSON-RPC error's code, 0 for a result
	group   string // the refusal's group
	retry   string // the Retry-After header
	text    string
}

// openLoop calls tool (with arguments args) at rate calls a second for d,
// each call at its due time whatever the previous ones do, round robin over
// sessions; latencies count from the due time.
func openLoop(t *testing.T, url string, sessions []string, tool, args string, rate float64, d time.Duration, out chan<- openCall) *sync.WaitGroup {
	var wg sync.WaitGroup
	n := int(rate * d.Seconds())
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			time.Sleep(time.Until(due)) // the open loop's schedule, not a synchronisation
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := callTool(url, sessions[i%len(sessions)], i+2, tool, args)
				c.latency = time.Since(due)
				out <- c
			}()
		}
	}()
	return &wg
}

// callTool calls tool with args (JSON) in session sid, as request id,
// and returns how it was answered: status, Retry-After, and the result's
// first text or the error's code and group; a failed exchange's error in
// text. With tool "" it sends a ping, which the gateway answers itself. It
// may run on any goroutine.
func callTool(url, sid string, id int, tool, args string) openCall {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, args)
	if tool == "" {
		body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, id)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	c := openCall{tool: tool}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.text = err.Error()
		return c
	}
	var msg struct {
		Result *struct {
			Content []schema.Content `json:"content"`
		} `json:"result"`
		Error *struct {
			Code int `json:"code"`
			Data struct {
				Group string `json:"group"`
			} `json:"data"`
		} `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	c.status, c.retry = resp.StatusCode, resp.Header.Get("Retry-After")
	switch {
	case err != nil:
		c.text = err.Error()
	case msg.Error != nil:
		c.code, c.group = msg.Error.Code, msg.Error.Data.Group
	case msg.Result != nil && len(msg.Result.Content) > 0:
		c.text = msg.Result.Content[0].Text
	}
	return c
}

// p99 is the 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*99)/100]
}

// TestGroupAdmission overloads a slow worker group (2 handlers, 50 ms a
// call: about 40 calls a second) twice over with an open loop for 3 s,
// while another group's echo gets a steady 50 calls a second. The slow
// group's excess is refused at once (503, Retry-After, -32000 naming the
// group), the calls it admits wait about its queue target rather than
// seconds, and echo keeps its latency. Without admission per group the
// slow group's queue would grow by 40 calls a second: its last calls would
// wait 3 s. Pings at 50 a second, which the gateway answers itself,
// measure what the machine adds to every call (the bounds on latencies
// leave twice their p99 of room). The gateway's metrics count each
// group's calls as the clients saw them answered.
func TestGroupAdmission(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newStack(t, gateway.Config{Metrics: reg})
	slow := workers.NewGroup("slow")
	workers.AddTool(slow, workers.Tool{Name: "nap", Description: "Sleeps 50 ms.", Annotations: map[string]any{"readOnlyHint": true}},
		func(ctx context.Context, _ *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			select {
			case <-time.After(50 * time.Millisecond):
				return workers.TextResult("rested"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	s.runGroupWith(t, slow, "nap", workers.Options{Concurrency: 2})
	sessions := make([]string, 8)
	for i := range sessions {
		sessions[i] = initSession(t, s.url)
	}
	// Warm up: the replicas report their run times once they ran.
	for range 4 {
		r := post(t, s.url, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"nap","arguments":{}}}`,
			"Mcp-Session-Id", sessions[0], "Mcp-Protocol-Version", "2025-11-25")
		if r.status != http.StatusOK {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
	}
	const d = 3 * time.Second
	out := make(chan openCall, 1024)
	napLoop := openLoop(t, s.url, sessions, "nap", `{}`, 80, d, out)
	echoLoop := openLoop(t, s.url, sessions, "echo", `{"text":"x"}`, 50, d, out)
	// Pings, which the gateway answers itself, measure what the machine
	// (shared with other tests and jobs) adds to every call of the run.
	pingLoop := openLoop(t, s.url, sessions, "", "", 50, d, out)
	done := make(chan struct{})
	go func() { napLoop.Wait(); echoLoop.Wait(); pingLoop.Wait(); close(done) }()
	var calls []openCall
	for collecting := true; collecting; {
		select {
		case c := <-out:
			calls = append(calls, c)
		case <-done:
			collecting = false
		}
	}
	for len(out) > 0 {
		calls = append(calls, <-out)
	}

	var admitted, refused, echo, pings []time.Duration
	for _, c := range calls {
		switch {
		case c.tool == "" && c.status == http.StatusOK:
			pings = append(pings, c.latency)
		case c.tool == "echo" && c.status == http.StatusOK && c.text == "x":
			echo = append(echo, c.latency)
		case c.tool == "nap" && c.status == http.StatusOK && c.text == "rested":
			admitted = append(admitted, c.latency)
		case c.tool == "nap" && c.status == http.StatusServiceUnavailable && c.code == schema.CodeOverloaded && c.group == "slow":
			if n, err := strconv.Atoi(c.retry); err != nil || n < 1 {
				t.Errorf("a refusal's Retry-After is %q", c.retry)
			}
			refused = append(refused, c.latency)
		default:
			t.Errorf("unexpected answer to %s: %+v", c.tool, c)
		}
	}
	// What the machine (shared with other tests and jobs) added to calls no
	// group serves, doubled: the tails of streams of calls sharing a
	// stalled machine differ by about as much.
	machine := 2 * p99(pings)
	t.Logf("nap: %d admitted (p99 %s), %d refused (p99 %s); echo: %d (p99 %s); pings: %d (p99 %s)", len(admitted), p99(admitted),
		len(refused), p99(refused), len(echo), p99(echo), len(pings), p99(pings))
	if len(admitted)+len(refused) != 240 || len(echo) != 150 || len(pings) != 150 {
		t.Errorf("answered %d nap, %d echo calls and %d pings, want 240, 150 and 150", len(admitted)+len(refused), len(echo), len(pings))
	}
	// Twice the capacity: about half refused, about the capacity (120)
	// admitted. Admitted calls wait about the 50 ms target, not seconds
	// (3.4 s without admission per group); refusals come at once, before
	// the admitted calls' median or about as soon as pings; echo does not queue
	// behind nap. Each bound leaves room for a machine loaded by other
	// jobs: twice the pings' p99 (tens of ms when it is quiet, seconds
	// when it is not).
	if len(refused) < 60 || len(admitted) < 60 || len(admitted) > 150 {
		t.Errorf("%d admitted, %d refused: want the excess refused and about the capacity admitted", len(admitted), len(refused))
	}
	if p := p99(admitted); p > time.Second+machine {
		t.Errorf("admitted calls' p99 %s (room for the machine %s): they queued behind the slow group", p, machine)
	}
	if p, m := p99(refused), admitted[len(admitted)/2]; p > max(m, machine) {
		t.Errorf("refusals' p99 %s, over the admitted calls' median %s and the room for the machine %s: not refused at once", p, m, machine)
	}
	if p := p99(echo); p > 500*time.Millisecond+machine {
		t.Errorf("echo's p99 %s (room for the machine %s) while another group is overloaded", p, machine)
	}

	// Every call was counted before it was answered.
	fams := gather(t, reg)
	for _, c := range []struct {
		group, outcome string
		want           int
	}{
		{"slow", "admitted", len(admitted) + 4}, // and the warm-up's
		{"slow", "refused", len(refused)},
		{"demo", "admitted", len(echo)},
		{"demo", "refused", 0},
	} {
		if got := fams.value(t, "mcpstream_gateway_group_calls_total", "group", c.group, "outcome", c.outcome); got != float64(c.want) {
			t.Errorf("group_calls_total{group=%q,outcome=%q} = %v, want %d", c.group, c.outcome, got, c.want)
		}
	}
	if n := len(fams["mcpstream_gateway_group_expected_wait_seconds"].GetMetric()); n != 2 {
		t.Errorf("%d series of group_expected_wait_seconds, want one a group", n)
	}
}

// TestQueueTargets: a worker group and a tool set their own queue targets
// at registration, and every gateway refuses by them. A group of one
// handler at 100 ms a call, with a target of 10 s, gets ten calls at once:
// a second of backlog. Then a call of its tool with no target of its own
// is admitted (the group's 10 s), and one of its tool whose target is
// 20 ms is refused at once, naming the group; by the gateways' default of
// 50 ms both would be refused.
func TestQueueTargets(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newStack(t, gateway.Config{Metrics: reg})
	g := workers.NewGroup("patient")
	rest := func(ctx context.Context, _ *workers.Call, _ struct{}) (*schema.ToolResult, error) {
		select {
		case <-time.After(100 * time.Millisecond):
			return workers.TextResult("rested"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ro := map[string]any{"readOnlyHint": true}
	workers.AddTool(g, workers.Tool{Name: "wait_in_line", Description: "Sleeps 100 ms.", Annotations: ro}, rest)
	workers.AddTool(g, workers.Tool{Name: "must_be_quick", Description: "Sleeps 100 ms, if it can start soon.", Annotations: ro,
		QueueTarget: 20 * time.Millisecond}, rest)
	s.runGroupWith(t, g, "must_be_quick", workers.Options{Concurrency: 1, QueueTarget: 10 * time.Second})
	sid := initSession(t, s.url)
	rested := func(c openCall) bool { return c.status == http.StatusOK && c.text == "rested" }
	// The replica reports its run time once it ran.
	for range 2 {
		if c := callTool(s.url, sid, 2, "wait_in_line", `{}`); !rested(c) {
			t.Fatalf("warm-up: %+v", c)
		}
	}

	// A second of backlog, and a gateway that knows it.
	const queued = 10
	answers := make(chan openCall, queued+1)
	inLine := func() { answers <- callTool(s.url, sid, 3, "wait_in_line", `{}`) }
	for range queued {
		go inLine()
	}
	testkit.Eventually(t, "the gateway expecting a wait of 300 ms at least", 10*time.Second, func() bool {
		fams := gather(t, reg)
		return fams.value(t, "mcpstream_gateway_group_calls_total", "group", "patient", "outcome", "admitted") == 2+queued &&
			fams.value(t, "mcpstream_gateway_group_expected_wait_seconds", "group", "patient") >= 0.3
	})

	// The tool with a target of its own is refused; the group's admits.
	if c := callTool(s.url, sid, 4, "must_be_quick", `{}`); c.status != http.StatusServiceUnavailable ||
		c.code != schema.CodeOverloaded || c.group != "patient" {
		t.Errorf("must_be_quick behind a second of backlog: %+v; want 503, -32000 naming the group", c)
	}
	go inLine()
	for range queued + 1 {
		if c := <-answers; !rested(c) {
			t.Errorf("wait_in_line, within the group's 10 s: %+v", c)
		}
	}
	fams := gather(t, reg)
	if got := fams.value(t, "mcpstream_gateway_group_calls_total", "group", "patient", "outcome", "refused"); got != 1 {
		t.Errorf("%v calls refused, want must_be_quick's", got)
	}
}
