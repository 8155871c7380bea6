package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// replayMasked is what replay prints for a masked value.
const replayMasked = "***"

// replayLine is what a line of `mcpstream replay` holds.
type replayLine struct {
	Seq       uint64          `json:"seq"`
	Stream    string          `json:"stream"`
	Time      string          `json:"time"`
	Group     string          `json:"group"`
	Key       string          `json:"key"`
	Session   string          `json:"session"`
	Revision  string          `json:"revision"`
	Method    string          `json:"method"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	TraceID   string          `json:"trace_id"`
	Attempt   int             `json:"attempt"`
	Deadline  string          `json:"deadline"`
	Result    json.RawMessage `json:"result"`
	Error     json.RawMessage `json:"error"`
	Duration  string          `json:"duration"`
}

// runReplay runs `mcpstream replay` with args to its end and returns its
// lines, failing the test on a non-zero exit or a line that is not JSON.
func runReplay(t *testing.T, natsURL string, args ...string) []replayLine {
	t.Helper()
	p := start(t, "replay", append([]string{"replay", "--nats", natsURL}, args...)...)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("replay %v exited %d: %s", args, code, tail(p.stderr.String(), 2000))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []replayLine
	for _, s := range p.lines {
		var l replayLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("replay %v printed a line that is not JSON: %q", args, s)
		}
		out = append(out, l)
	}
	return out
}

// call is a call the test made: its session, tool and arguments.
type call struct {
	session, tool string
	args          map[string]any
}

// argsOf is the canonical JSON of arguments, to compare with a line's.
func argsOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("arguments %s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// consumerCounts are the demo group's durable consumers' delivered and
// acknowledged counts on every partition.
func consumerCounts(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	var out []string
	for p := range 4 {
		c, err := js.Consumer(context.Background(), streams.StreamName(p), streams.ConsumerName("demo"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s delivered %d/%d acked %d/%d", info.Stream, info.Delivered.Consumer, info.Delivered.Stream,
			info.AckFloor.Consumer, info.AckFloor.Stream))
	}
	return strings.Join(out, "; ")
}

// TestReplay: 1,000 calls over several sessions and tools of the official
// go-sdk client, recorded with their results, then `mcpstream replay`
// filtered by session, tool, time range and trace id prints exactly the
// matching calls, in order, with their arguments (and results); --follow
// prints a call made after it started; sensitive arguments are masked;
// --to --diff finds no difference against the same group and finds them
// against a changed tool; the durable consumers are untouched by reading.
func TestReplay(t *testing.T) {
	o := testkit.StartOTLP(t) // traces on: envelopes carry the trace context
	_, endpoint, natsURL := startDevEnv(t, o.Env("http/protobuf"), true, "--record-results")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, js := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return nats.Connect(natsURL) })

	// A group of this process with a tool whose password is sensitive.
	type loginIn struct {
		User     string `json:"user"`
		Password string `json:"password" mcpstream:"sensitive"`
	}
	g := workers.NewGroup("accounts")
	workers.AddTool(g, workers.Tool{Name: "login"}, func(_ context.Context, _ *workers.Call, in loginIn) (string, error) {
		return "welcome " + in.User, nil
	})
	runGroupOn(t, natsURL, g)

	// 1,000 calls: 8 sessions, echo and add in turn.
	const sessions, perSession = 8, 125
	var mu sync.Mutex
	var made []call
	var ids []string
	var wg sync.WaitGroup
	for s := range sessions {
		cs := connectOfficial(t, ctx, endpoint, fmt.Sprintf("replay-%d", s), nil)
		defer cs.Close()
		ids = append(ids, cs.ID())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSession {
				c := call{session: cs.ID(), tool: "echo", args: map[string]any{"text": fmt.Sprintf("s%d-n%d", s, n)}}
				if n%2 == 1 {
					c.tool, c.args = "add", map[string]any{"a": n, "b": s}
				}
				if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args}); err != nil {
					t.Errorf("%s: %v", c.tool, err)
					return
				}
				mu.Lock()
				made = append(made, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Three calls in one trace, and a login.
	traceID := fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	cs := connectOfficial(t, ctx, endpoint, "replay-traced", nil)
	defer cs.Close()
	for n := range 3 {
		parent := fmt.Sprintf("00-%s-%016x-01", traceID, rand.Uint64()|1)
		c := call{session: cs.ID(), tool: "echo", args: map[string]any{"text": fmt.Sprintf("traced-%d", n)}}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args, Meta: mcp.Meta{"traceparent": parent}}); err != nil {
			t.Fatal(err)
		}
		made = append(made, c)
	}
	testkit.Eventually(t, "login listed", 10*time.Second, func() bool {
		res, err := cs.ListTools(ctx, nil)
		return err == nil && slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "login" })
	})
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "login", Arguments: map[string]any{"user": "ada", "password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	made = append(made, call{session: cs.ID(), tool: "login", args: map[string]any{"user": "ada", "password": replayMasked}})
	before := consumerCounts(t, js)

	// Everything, with results: 1,004 lines in time order, each call once.
	all := runReplay(t, natsURL, "--results")
	if len(all) != sessions*perSession+4 {
		t.Fatalf("replay printed %d lines, want %d", len(all), sessions*perSession+4)
	}
	seen := map[string]bool{}
	for i, l := range all {
		if i > 0 && l.Time < all[i-1].Time {
			t.Fatalf("line %d at %s before line %d at %s", i, l.Time, i-1, all[i-1].Time)
		}
		if seen[l.Key] || l.Method != "tools/call" || l.Attempt != 1 || l.Deadline <= l.Time || l.Group == "" || l.Revision != "2025-11-25" {
			t.Fatalf("line %d: %+v", i, l)
		}
		seen[l.Key] = true
		if len(l.Result) == 0 || l.Duration == "" {
			t.Fatalf("line %d has no recorded result: %+v", i, l)
		}
	}
	counted := map[string]int{}
	for _, c := range made {
		b, _ := json.Marshal(c.args)
		counted[c.session+" "+c.tool+" "+string(b)]++
	}
	for _, l := range all {
		counted[l.Session+" "+l.Tool+" "+argsOf(t, l.Arguments)]--
	}
	for k, n := range counted {
		if n != 0 {
			t.Errorf("call %s: %d more made than replayed", k, n)
		}
	}

	// By session: that session's calls in the order it made them.
	got := runReplay(t, natsURL, "--session", ids[3])
	var want []string
	for _, c := range made {
		if c.session == ids[3] {
			b, _ := json.Marshal(c.args)
			want = append(want, c.tool+" "+string(b))
		}
	}
	var gotCalls []string
	for _, l := range got {
		gotCalls = append(gotCalls, l.Tool+" "+argsOf(t, l.Arguments))
	}
	if !slices.Equal(gotCalls, want) {
		t.Errorf("--session: %d calls, want %d in order; first %v, want %v", len(gotCalls), len(want), gotCalls[:min(3, len(gotCalls))], want[:3])
	}

	// By tool: the adds of the full replay, in the same order.
	var adds []string
	for _, l := range all {
		if l.Tool == "add" {
			adds = append(adds, l.Key)
		}
	}
	if got := keys(runReplay(t, natsURL, "--tool", "add")); !slices.Equal(got, adds) {
		t.Errorf("--tool add: %d lines, want %d", len(got), len(adds))
	}

	// By time range: the lines stored between two lines' times.
	from, to := all[300].Time, all[700].Time
	var inRange []string
	for _, l := range all {
		if l.Time >= from && l.Time <= to {
			inRange = append(inRange, l.Key)
		}
	}
	if got := keys(runReplay(t, natsURL, "--since", from, "--until", to)); !slices.Equal(got, inRange) {
		t.Errorf("--since %s --until %s: %d lines, want %d", from, to, len(got), len(inRange))
	}
	if got := keys(runReplay(t, natsURL, "--since", from, "--limit", "10")); !slices.Equal(got, inRange[:10]) {
		t.Errorf("--limit 10: %v, want %v", got, inRange[:10])
	}

	// By trace id: the three traced calls.
	traced := runReplay(t, natsURL, "--trace-id", traceID, "--results")
	if len(traced) != 3 {
		t.Fatalf("--trace-id: %d lines, want 3", len(traced))
	}
	for n, l := range traced {
		if w := fmt.Sprintf(`{"text":"traced-%d"}`, n); argsOf(t, l.Arguments) != w || l.TraceID != traceID ||
			!strings.Contains(string(l.Result), fmt.Sprintf("traced-%d", n)) {
			t.Errorf("traced line %d: %+v", n, l)
		}
	}

	// Sensitive arguments: masked unless asked for; --redact masks more.
	login := runReplay(t, natsURL, "--tool", "login", "--results", "--redact", "/result/content/*/text")
	if len(login) != 1 || argsOf(t, login[0].Arguments) != `{"password":"`+replayMasked+`","user":"ada"}` || strings.Contains(string(login[0].Result), "welcome") {
		t.Errorf("login replayed as %+v", login)
	}
	login = runReplay(t, natsURL, "--tool", "login", "--show-sensitive")
	if len(login) != 1 || argsOf(t, login[0].Arguments) != `{"password":"hunter2","user":"ada"}` {
		t.Errorf("login with --show-sensitive: %+v", login)
	}

	if after := consumerCounts(t, js); after != before {
		t.Errorf("reading changed the durable consumers:\nbefore %s\nafter  %s", before, after)
	}

	// --follow: a call made after the replay started is printed.
	follow := start(t, "replay-follow", "replay", "--nats", natsURL, "--follow", "--tool", "echo", "--since", "1s")
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "followed"}}); err != nil {
		t.Fatal(err)
	}
	follow.waitLine(regexp.MustCompile(`"text":"followed"`), 30*time.Second)
	follow.stop()

	// --to the same deployment, --diff: every answer the same.
	rerun := start(t, "replay-to", "replay", "--nats", natsURL, "--session", ids[0], "--to", endpoint, "--diff", "--concurrency", "2")
	if code := rerun.wait(time.Minute); code != 0 {
		t.Fatalf("replay --to exited %d: %s", code, rerun.stderr.String())
	}
	rerun.mu.Lock()
	summary, diffs := rerun.stderr.String(), slices.Clone(rerun.lines)
	rerun.mu.Unlock()
	if len(diffs) != 0 || !strings.Contains(summary, fmt.Sprintf("%d sent: %d same, 0 different, 0 failed", perSession, perSession)) {
		t.Errorf("--to the same group: %d lines %v; summary %q", len(diffs), diffs[:min(2, len(diffs))], summary)
	}

	// --to a server whose echo changed: every echo differs, every add not.
	changed := mcp.NewServer(&mcp.Implementation{Name: "staging", Version: "2"}, nil)
	mcp.AddTool(changed, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.ToUpper(in.Text)}}}, nil, nil
	})
	mcp.AddTool(changed, &mcp.Tool{Name: "add"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		A float64 `json:"a"`
		B float64 `json:"b"`
	}) (*mcp.CallToolResult, struct {
		Sum float64 `json:"sum"`
	}, error) {
		return nil, struct {
			Sum float64 `json:"sum"`
		}{in.A + in.B}, nil
	})
	staging := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return changed }, nil))
	defer staging.Close()
	rerun = start(t, "replay-to-staging", "replay", "--nats", natsURL, "--session", ids[1], "--to", staging.URL, "--diff")
	if code := rerun.wait(time.Minute); code != 0 {
		t.Fatalf("replay --to staging exited %d: %s", code, rerun.stderr.String())
	}
	rerun.mu.Lock()
	summary, diffs = rerun.stderr.String(), slices.Clone(rerun.lines)
	rerun.mu.Unlock()
	echoes := (perSession + 1) / 2
	if len(diffs) != echoes || !strings.Contains(summary, fmt.Sprintf("%d sent: %d same, %d different", perSession, perSession-echoes, echoes)) {
		t.Fatalf("--to a changed echo: %d differing lines, want %d; summary %q", len(diffs), echoes, summary)
	}
	var d struct {
		Tool, Outcome, Diff string
	}
	if err := json.Unmarshal([]byte(diffs[0]), &d); err != nil || d.Tool != "echo" || d.Outcome != "different" || !strings.Contains(d.Diff, "S1-N0") {
		t.Errorf("first difference: %s", diffs[0])
	}
}

// keys are the lines' request keys.
func keys(lines []replayLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Key)
	}
	return out
}

// runGroupOn serves g on natsURL for the rest of the test.
func runGroupOn(t *testing.T, natsURL string, g *workers.Group) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready, ran := make(chan struct{}), make(chan error, 1)
	go func() { ran <- g.Run(ctx, nc, workers.Options{Ready: ready, Logger: quietLog, RecordResults: true}) }()
	t.Cleanup(func() { stop(); <-ran; nc.Close() })
	select {
	case <-ready:
	case err := <-ran:
		t.Fatal(err)
	}
}

// BenchmarkReplayRSS records b.N requests (over the 4 partitions of
// `mcpstream dev`) and reads them all back with `mcpstream replay`, which
// prints none of them (a --tool filter no request matches), and reports
// the replay process's peak resident memory (maxrss-MiB) and its reading
// rate. Run it with -benchtime 100000x, then 300000x: the peak levels off
// once the readers' buffers are full (at about 100,000 of these requests)
// as the range grows.
func BenchmarkReplayRSS(b *testing.B) { benchmarkReplayRSS(b, 200) }

// BenchmarkReplayRSSLarge is BenchmarkReplayRSS with requests of 256 KiB
// (a tool given a document or an image): the peak is bounded in bytes,
// not only in requests. Run it with -benchtime 1000x, then 4000x (a 1 GiB
// range).
func BenchmarkReplayRSSLarge(b *testing.B) { benchmarkReplayRSS(b, 256<<10) }

func benchmarkReplayRSS(b *testing.B, size int) {
	_, _, natsURL := startDev(b, true, "--examples", "0")
	_, js := testkit.JetStreamOver(b, func() (*nats.Conn, error) { return nats.Connect(natsURL) })
	args, _ := json.Marshal(map[string]string{"text": strings.Repeat("x", size)})
	for i := range b.N {
		if err := publishRecorded(js, i, args); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	b.ResetTimer()
	cmd := exec.Command(binary, "replay", "--nats", natsURL, "--tool", "no-such-tool")
	out, err := cmd.CombinedOutput()
	b.StopTimer()
	if err != nil || len(out) != 0 {
		b.Fatalf("replay: %v: %s", err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Skip("no rusage on this platform")
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB") // Linux: KiB
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// publishRecorded publishes request i, a tools/call of echo with args
// (JSON), as a gateway would, without waiting for its acknowledgement.
func publishRecorded(js jetstream.JetStream, i int, args []byte) error {
	params, err := schema.JSONToMsgpack(nil, args)
	if err != nil {
		return err
	}
	env := schema.Envelope{Key: fmt.Sprintf("bench-%d", i), Method: "tools/call", Name: "echo", Params: params,
		Session: fmt.Sprintf("s%d", i%64), ReplyTo: "mcp.reply.bench", Attempt: 1}
	data, _ := env.Marshal()
	_, err = js.PublishAsync(streams.RequestSubject("demo", streams.Partition(env.Session, 4)), data)
	return err
}
