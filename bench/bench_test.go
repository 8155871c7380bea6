package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench/internal/targets"
)

// serve mounts h on a loopback test server and returns its MCP URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestClosedLoop(t *testing.T) {
	for name, h := range map[string]http.Handler{"mcp-go": targets.MCPGo(), "go-sdk": targets.GoSDK()} {
		t.Run(name, func(t *testing.T) {
			res := run(t, Config{
				URL: serve(t, h), Sessions: 4, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
				Tool: "echo", Args: json.RawMessage(`{"text":"hello"}`), ServerPID: os.Getpid(),
			})
			if res.OK == 0 || res.OK != res.Calls || len(res.Errors) != 0 {
				t.Fatalf("calls %d ok %d errors %v setup %v, want all ok", res.Calls, res.OK, res.Errors, res.SetupErrors)
			}
			if res.Throughput <= 0 || res.Offered <= 0 {
				t.Errorf("throughput %v offered %v, want > 0", res.Throughput, res.Offered)
			}
			if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max {
				t.Errorf("percentiles p50 %v p99 %v max %v out of order", res.P50, res.P99, res.Max)
			}
			if res.SessionsReady != 4 {
				t.Errorf("%d sessions ready, want 4", res.SessionsReady)
			}
			if !res.End.After(res.Start) {
				t.Errorf("window %v .. %v", res.Start, res.End)
			}
			// The server runs in this process too: the CPU measured is
			// theirs together, at most every core over the window.
			if c := res.DriverCores(); res.DriverCPU <= 0 || c > float64(runtime.NumCPU())*1.1 {
				t.Errorf("driver CPU %v (%.2f cores over the window), want > 0 and at most %d cores", res.DriverCPU, c, runtime.NumCPU())
			}
			var table strings.Builder
			res.WriteTable(&table)
			if !strings.Contains(table.String(), "driver cpu") {
				t.Errorf("the summary has no driver cpu line:\n%s", table.String())
			}
			if runtime.GOOS == "linux" {
				// The "server" is this process too, read from /proc in
				// ticks of 10 ms at the same instants.
				if d := res.ServerCPU - res.DriverCPU; res.ServerCPU <= 0 || d < -40*time.Millisecond || d > 40*time.Millisecond {
					t.Errorf("server CPU %v, want > 0 and within 40ms of the driver's %v (the same process)", res.ServerCPU, res.DriverCPU)
				}
				if !strings.Contains(table.String(), fmt.Sprintf("(pid %d)", os.Getpid())) {
					t.Errorf("the summary has no server cpu line:\n%s", table.String())
				}
			}
		})
	}
}

// TestProbeCall: the response type each plain server chooses for a call
// when the client accepts both; a tool error is an error.
func TestProbeCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for name, want := range map[string]string{"mcp-go": "application/json", "go-sdk": "application/json"} {
		h := map[string]http.Handler{"mcp-go": targets.MCPGo(), "go-sdk": targets.GoSDK()}[name]
		url := serve(t, h)
		got, err := ProbeCall(ctx, url, "echo", json.RawMessage(`{"text":"hello"}`))
		if err != nil || got != want {
			t.Errorf("%s: ProbeCall = %q, %v; want %q", name, got, err, want)
		}
		if _, err := ProbeCall(ctx, url, "fail", json.RawMessage(`{}`)); err == nil {
			t.Errorf("%s: ProbeCall of a failing tool succeeded", name)
		}
	}
}

func TestOpenLoopDeliversRate(t *testing.T) {
	const rate, dur = 200.0, time.Second
	res := run(t, Config{
		URL: serve(t, targets.MCPGo()), Sessions: 3, Rate: rate,
		Warmup: 200 * time.Millisecond, Duration: dur, Args: json.RawMessage(`{"text":"x"}`),
	})
	want := int64(rate * dur.Seconds())
	if res.Calls < want-2 || res.Calls > want+2 {
		t.Errorf("%d calls in the window, want %d", res.Calls, want)
	}
	if res.OK != res.Calls {
		t.Errorf("ok %d of %d, errors %v", res.OK, res.Calls, res.Errors)
	}
	if res.Offered != rate {
		t.Errorf("offered %v, want %v", res.Offered, rate)
	}
	if res.Throughput < rate*0.95 || res.Throughput > rate*1.05 {
		t.Errorf("throughput %v, want about %v", res.Throughput, rate)
	}
}

// TestOpenLoopLag: with one sender and a tool slower than the arrival
// interval, calls queue in the driver; the lag recorded apart is that
// queue, part of each latency, and a closed loop records none.
func TestOpenLoopLag(t *testing.T) {
	const delay = 20 * time.Millisecond
	mcp := targets.MCPGo()
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"tools/call"`)) {
			time.Sleep(delay) // the tool's own time, not synchronisation
		}
		mcp.ServeHTTP(w, r)
	}))
	open := run(t, Config{
		URL: url, Sessions: 1, Rate: 100, Conns: 1, Warmup: 50 * time.Millisecond,
		Duration: 300 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`),
	})
	if open.LagP99 < delay || open.P99 < open.LagP99 || open.LagMax < open.LagP99 || open.LagP50 > open.LagP99 {
		t.Errorf("one sender at twice its pace: lag p50 %v p99 %v max %v, latency p99 %v; want the lag ordered, beyond %v and within the latency",
			open.LagP50, open.LagP99, open.LagMax, open.P99, delay)
	}
	if open.SentP99 < delay || open.SentP99 >= open.P99 {
		t.Errorf("p99 from the send %v, from the due time %v; want at least the tool's %v and less than from the due time", open.SentP99, open.P99, delay)
	}
	var buf bytes.Buffer
	open.WriteTable(&buf)
	if !strings.Contains(buf.String(), "driver lag ms") {
		t.Errorf("table lacks the driver's lag:\n%s", buf.String())
	}
	closed := run(t, Config{URL: url, Sessions: 1, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`)})
	if closed.OK == 0 || closed.LagMax != 0 {
		t.Errorf("closed loop: %d ok, lag max %v; want calls and no lag", closed.OK, closed.LagMax)
	}
}

func TestOpenLoopOverflow(t *testing.T) {
	// A tool that never answers before the timeout: with at most 2 calls
	// outstanding, later arrivals are refused by the driver, not queued.
	block := make(chan struct{})
	defer close(block)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		switch msg.Method {
		case "initialize":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}`))
		case "tools/call":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	res := run(t, Config{
		URL: serve(t, h), Sessions: 1, Rate: 100, Duration: 200 * time.Millisecond,
		MaxOutstanding: 2, Timeout: 300 * time.Millisecond,
	})
	if res.Errors[KindDriverOverflow] != int(res.Calls)-2 || res.Errors[KindTimeout] != 2 {
		t.Errorf("calls %d errors %v, want 2 timeouts and the rest driver-overflow", res.Calls, res.Errors)
	}
}

func TestErrorKinds(t *testing.T) {
	url := serve(t, targets.MCPGo())
	unknown := run(t, Config{URL: url, Tool: "no-such-tool", Duration: 100 * time.Millisecond})
	if unknown.OK != 0 || unknown.Calls == 0 || len(unknown.Errors) != 1 {
		t.Fatalf("unknown tool: calls %d ok %d errors %v, want every call failed under one kind", unknown.Calls, unknown.OK, unknown.Errors)
	}
	t.Logf("unknown tool: %v", unknown.Errors)
	for kind := range unknown.Errors {
		if !strings.HasPrefix(kind, "rpc-") && kind != KindToolError {
			t.Errorf("unknown tool counted as %q, want rpc-<code> or tool-error", kind)
		}
	}
	failing := run(t, Config{URL: url, Tool: "fail", Duration: 100 * time.Millisecond})
	if failing.OK != 0 || failing.Errors[KindToolError] != int(failing.Calls) || failing.Calls == 0 {
		t.Errorf("fail tool: calls %d errors %v, want all tool-error", failing.Calls, failing.Errors)
	}
	overloaded := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	if _, err := Run(context.Background(), Config{URL: overloaded, Duration: 50 * time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "http-503") {
		t.Errorf("Run against a server that refuses initialize: err %v, want an http-503 setup error", err)
	}
}

// refusing wraps an MCP handler so that every other tools/call is refused,
// alternately with HTTP 503 and with the JSON-RPC error -32000, after
// delay.
func refusing(h http.Handler, delay time.Duration) http.Handler {
	var n sync.Mutex
	calls := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte(`"tools/call"`)) {
			h.ServeHTTP(w, r)
			return
		}
		n.Lock()
		calls++
		i := calls
		n.Unlock()
		time.Sleep(delay)
		switch i % 4 {
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case 3:
			var msg struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(body, &msg)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"error":{"code":-32000,"message":"overloaded"}}`))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func TestRefusalLatency(t *testing.T) {
	const delay = 5 * time.Millisecond
	res := run(t, Config{
		URL: serve(t, refusing(targets.MCPGo(), delay)), Sessions: 2, Rate: 200,
		Duration: 500 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`),
	})
	refused := int64(res.Errors[KindHTTP503] + res.Errors[KindOverloaded])
	if res.Refused == 0 || res.Refused != refused || res.Refused+res.OK != res.Calls {
		t.Fatalf("calls %d ok %d refused %d errors %v; want every call served or refused, refusals counted", res.Calls, res.OK, res.Refused, res.Errors)
	}
	if res.Errors[KindHTTP503] == 0 || res.Errors[KindOverloaded] == 0 {
		t.Errorf("errors %v, want both kinds of refusal", res.Errors)
	}
	if res.RefusedP50 < delay || res.RefusedP99 < res.RefusedP50 || res.RefusedMax < res.RefusedP99 {
		t.Errorf("refusal latency p50 %v p99 %v max %v, want ordered and at least %v", res.RefusedP50, res.RefusedP99, res.RefusedMax, delay)
	}
	if res.RefusedSentP99 < delay || res.RefusedSentP99 > res.RefusedP99 {
		t.Errorf("refusals' p99 from the send %v, from the due time %v: want at least %v and at most from the due time", res.RefusedSentP99, res.RefusedP99, delay)
	}
	var buf bytes.Buffer
	res.WriteTable(&buf)
	if !strings.Contains(buf.String(), "refusals ms") {
		t.Errorf("table lacks the refusal latencies:\n%s", buf.String())
	}
}

// TestHeaderAndRateLimitedSetup: Config.Header goes with every request, an
// initialize refused with 429 is tried again, Started is called once, and
// JSON names the headers without their values.
func TestHeaderAndRateLimitedSetup(t *testing.T) {
	mcp := targets.MCPGo()
	var mu sync.Mutex
	refusedInits, missing := 0, 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		if r.Header.Get("X-Principal") != "alice" {
			missing++
		}
		refuse := bytes.Contains(body, []byte(`"initialize"`)) && refusedInits < 2
		if refuse {
			refusedInits++
		}
		mu.Unlock()
		if refuse {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		mcp.ServeHTTP(w, r)
	})
	started := 0
	res := run(t, Config{
		URL: serve(t, h), Sessions: 3, Duration: 200 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`),
		Header: http.Header{"x-principal": {"alice"}}, Started: func() { started++ },
	})
	if res.SessionsReady != 3 || len(res.SetupErrors) != 0 || res.OK == 0 {
		t.Errorf("%d sessions ready, setup errors %v, %d calls ok; want 3 ready after the 429s, none failed", res.SessionsReady, res.SetupErrors, res.OK)
	}
	if refusedInits != 2 || missing != 0 || started != 1 {
		t.Errorf("%d initializes refused, %d requests without the header, Started called %d times; want 2, 0, 1", refusedInits, missing, started)
	}
	b, err := json.Marshal(res.Config)
	if err != nil || !strings.Contains(string(b), `"headers":["X-Principal"]`) || strings.Contains(string(b), "alice") {
		t.Errorf("config as JSON: %s, %v; want the header's name, not its value", b, err)
	}
}

func TestIdleStreams(t *testing.T) {
	for name, h := range map[string]http.Handler{"mcp-go": targets.MCPGo(), "go-sdk": targets.GoSDK()} {
		t.Run(name, func(t *testing.T) {
			res := run(t, Config{URL: serve(t, h), Sessions: 2, IdleStreams: 20, Duration: 200 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`)})
			if res.IdleEstablished != 20 || res.IdleDropped != 0 || len(res.SetupErrors) != 0 {
				t.Errorf("idle streams: %d established, %d dropped, setup errors %v; want 20, 0, none",
					res.IdleEstablished, res.IdleDropped, res.SetupErrors)
			}
			if res.OK == 0 {
				t.Errorf("no successful call beside the idle streams: calls %d errors %v", res.Calls, res.Errors)
			}
		})
	}
}

func TestSourceIPs(t *testing.T) {
	var mu sync.Mutex
	hosts := map[string]bool{}
	mcp := targets.MCPGo()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		hosts[host] = true
		mu.Unlock()
		mcp.ServeHTTP(w, r)
	})
	res := run(t, Config{URL: serve(t, h), Sessions: 6, SourceIPs: 3, Duration: 100 * time.Millisecond, Args: json.RawMessage(`{"text":"x"}`)})
	if res.OK == 0 || len(hosts) != 3 {
		t.Errorf("ok %d, connections from %v; want calls from 127.0.0.1..3", res.OK, hosts)
	}
}

func TestReadEventStream(t *testing.T) {
	stream := ": comment\n\n" +
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{}}\n\n" +
		"id: 3\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\r\ndata: \"result\":{\"isError\":true}}\r\n\r\n"
	got, err := readEventStream(strings.NewReader(stream), 7)
	if err != nil || !isToolError(got) {
		t.Fatalf("readEventStream = %s, %v; want the isError result of id 7", got, err)
	}
	_, err = readEventStream(strings.NewReader("data: {\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,\"message\":\"no\"}}"), 2)
	if k := errKind(err); k != "rpc--32602" {
		t.Errorf("error response without a final blank line: kind %q (%v), want rpc--32602", k, err)
	}
	_, err = readEventStream(strings.NewReader("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"), 2)
	if k := errKind(err); k != KindBadResponse {
		t.Errorf("stream without our response: kind %q, want %s", k, KindBadResponse)
	}
}

func TestReportOutputs(t *testing.T) {
	results := []*Result{
		{Config: Config{Label: "a", URL: "http://x/mcp", Rate: 500, Duration: time.Second}.withDefaults(),
			Calls: 500, OK: 500, Throughput: 500, Offered: 500,
			P50: 800 * time.Microsecond, P90: 2 * time.Millisecond, P99: 9 * time.Millisecond, P999: 30 * time.Millisecond, Max: 40 * time.Millisecond},
		{Config: Config{Label: "a", URL: "http://x/mcp", Rate: 1000, Duration: time.Second}.withDefaults(),
			Calls: 1000, OK: 990, Errors: map[string]int{"http-503": 10}, Throughput: 990, Offered: 1000,
			P50: time.Millisecond, P90: 3 * time.Millisecond, P99: 20 * time.Millisecond, P999: 90 * time.Millisecond, Max: 120 * time.Millisecond,
			DriverCPU: 250 * time.Millisecond, ServerCPU: 100 * time.Millisecond, Start: time.Unix(100, 0), End: time.Unix(101, 0)},
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, results); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded[1]["p99_ms"] != 20.0 || decoded[0]["config"].(map[string]any)["duration_ms"] != 1000.0 || decoded[1]["driver_cpu_s"] != 0.25 || decoded[1]["server_cpu_s"] != 0.1 {
		t.Errorf("JSON: p99_ms %v, duration_ms %v, driver_cpu_s %v, server_cpu_s %v; want 20, 1000, 0.25 and 0.1",
			decoded[1]["p99_ms"], decoded[0]["config"], decoded[1]["driver_cpu_s"], decoded[1]["server_cpu_s"])
	}
	buf.Reset()
	results[1].Config.ServerPID = 42
	results[1].WriteTable(&buf)
	WriteRows(&buf, results)
	for _, want := range []string{"p99 20.00", "http-503 10", "990", "driver cpu  0.25 cores, 250 us a call", "server cpu  0.10 cores, 100 us a call (pid 42)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, buf.String())
		}
	}
	dir := t.TempDir()
	for name, draw := range map[string]func(string, []*Result) error{"sweep.png": Chart, "compare.png": CompareChart} {
		path := filepath.Join(dir, name)
		if err := draw(path, results); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG (%v)", name, err)
		}
	}
}

// BenchmarkCall measures one closed-loop call against an in-process mcp-go
// server, driver and server together.
func BenchmarkCall(b *testing.B) {
	url := serve(b, targets.MCPGo())
	hc := newHTTPClient(4, 1)
	s := &session{hc: hc, url: url, rec: newRecorder()}
	ctx := context.Background()
	if err := s.initialize(ctx); err != nil {
		b.Fatal(err)
	}
	params := []byte(`{"name":"echo","arguments":{"text":"hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.call(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the command
	// name holds spaces and parentheses.
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0\n"
	if got := parseProcStat([]byte(stat)); got != 3*time.Second {
		t.Errorf("parseProcStat = %v, want 3s", got)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (cmd) S 1 2", "4242 (cmd) S 1 4242 4242 0 -1 4194560 900 0 0 0 x 50 0"} {
		if got := parseProcStat([]byte(bad)); got != -1 {
			t.Errorf("parseProcStat(%q) = %v, want -1", bad, got)
		}
	}
	if runtime.GOOS == "linux" && pidCPU(os.Getpid()) < 0 {
		t.Error("pidCPU of this process: -1 on Linux")
	}
}
