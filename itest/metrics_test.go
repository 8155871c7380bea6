package itest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

func echoBody(id int, text string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, text)
}

// families are gathered or scraped metric families by name.
type families map[string]*dto.MetricFamily

// gather collects reg's metrics.
func gather(t *testing.T, reg prometheus.Gatherer) families {
	t.Helper()
	list, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	fams := families{}
	for _, f := range list {
		fams[f.GetName()] = f
	}
	return fams
}

// value returns the value of the one series of family name whose labels
// include labels (name, value pairs): a counter's or a gauge's value, a
// histogram's sample count; 0 when there is none (as a counter never
// incremented). It fails the test when several series match.
func (fams families) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	var found *dto.Metric
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		if found != nil {
			t.Fatalf("%s%v: more than one series", name, labels)
		}
		found = m
	}
	switch {
	case found == nil:
		return 0
	case found.Histogram != nil:
		return float64(found.GetHistogram().GetSampleCount())
	case found.Gauge != nil:
		return found.GetGauge().GetValue()
	}
	return found.GetCounter().GetValue()
}

// TestGatewayAndWorkerMetrics: on an in-process stack whose gateway and
// demo worker share a registry, calls answered, failed and refused are
// counted by method and outcome and timed, the refusal by its reason, the
// queueing the limiter sees is recorded, the gauges read the gateway's
// state, and the worker counts its deliveries and times its handlers. No
// label carries a tool name, a session or a principal.
func TestGatewayAndWorkerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newStack(t, gateway.Config{ID: "gw-metrics", Metrics: reg, MaxSessionInFlight: 1, MaxInFlight: 3})
	sid := initSession(t, s.url)
	for i := range 3 {
		if r := post(t, s.url, echoBody(10+i, "hi"), "Mcp-Session-Id", sid); r.status != http.StatusOK || !strings.Contains(string(r.body), `"text":"hi"`) {
			t.Fatalf("echo: status %d: %s", r.status, r.body)
		}
	}
	r := post(t, s.url, `{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"no-such-tool","arguments":{}}}`, "Mcp-Session-Id", sid)
	if e := decodeError(t, r.body); r.status != http.StatusOK || e.Error.Code != -32602 {
		t.Fatalf("unknown tool: status %d: %s", r.status, r.body)
	}
	// A call holds the session's one slot: the next is refused.
	slept := make(chan rawResponse, 1)
	go func() { slept <- post(t, s.url, sleepBody(21, 500), "Mcp-Session-Id", sid) }()
	awaitInFlight(t, s.gw, 1)
	if r := post(t, s.url, echoBody(22, "refused"), "Mcp-Session-Id", sid); r.status != http.StatusServiceUnavailable {
		t.Fatalf("call beyond the session's cap: status %d: %s", r.status, r.body)
	}
	if r := <-slept; r.status != http.StatusOK || !strings.Contains(string(r.body), "slept 500 ms") {
		t.Fatalf("sleep: status %d: %s", r.status, r.body)
	}
	if r := post(t, s.url, echoBody(23, "no session")); r.status != http.StatusBadRequest {
		t.Fatalf("call without a session: status %d: %s", r.status, r.body)
	}
	if r := post(t, s.url, `{"jsonrpc":"2.0","id":24,"method":"ping"}`, "Mcp-Session-Id", sid); r.status != http.StatusOK {
		t.Fatalf("ping: status %d: %s", r.status, r.body)
	}
	r = post(t, s.url, `{"jsonrpc":"2.0","id":25,"method":"no/such/method"}`, "Mcp-Session-Id", sid)
	if e := decodeError(t, r.body); r.status != http.StatusOK || e.Error.Code != -32601 {
		t.Fatalf("unknown method: status %d: %s", r.status, r.body)
	}
	// The session's GET stream: the connection is hijacked through the
	// metrics' response writer, and the gauge counts it while it is open.
	req, _ := http.NewRequest(http.MethodGet, s.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", resp, err)
	}
	testkit.Eventually(t, "the stream counted", 10*time.Second, func() bool {
		return gather(t, reg).value(t, "mcpstream_gateway_event_streams") == 1
	})
	resp.Body.Close()

	// A request is counted once its handler returns, which may be just
	// after its client has the response; a handler goroutine is idle once
	// it has acknowledged.
	const requests = 11
	var fams families
	testkit.Eventually(t, "every request counted, every handler idle, the stream gone", 10*time.Second, func() bool {
		fams = gather(t, reg)
		total := 0.0
		for _, m := range fams["mcpstream_gateway_requests_total"].GetMetric() {
			total += m.GetCounter().GetValue()
		}
		return total == requests && fams.value(t, "mcpstream_worker_handlers_busy", "group", "demo") == 0 &&
			fams.value(t, "mcpstream_gateway_event_streams") == 0
	})
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"mcpstream_gateway_requests_total", []string{"gateway", "gw-metrics", "method", "initialize", "outcome", "ok"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "tools/call", "outcome", "ok"}, 4},
		{"mcpstream_gateway_requests_total", []string{"method", "tools/call", "outcome", "error"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "tools/call", "outcome", "refused"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "tools/call", "outcome", "bad_request"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "ping", "outcome", "ok"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "other", "outcome", "error"}, 1},
		{"mcpstream_gateway_requests_total", []string{"method", "GET", "outcome", "ok"}, 1},
		// Served requests are timed by method, refused ones apart; bad
		// ones are not.
		{"mcpstream_gateway_request_duration_seconds", []string{"method", "tools/call"}, 5},
		{"mcpstream_gateway_request_duration_seconds", []string{"method", "initialize"}, 1},
		{"mcpstream_gateway_refusal_duration_seconds", nil, 1},
		{"mcpstream_gateway_refusals_total", []string{"reason", "session_limit"}, 1},
		{"mcpstream_gateway_refusals_total", []string{"reason", "gateway_limit"}, 0},
		{"mcpstream_gateway_queue_overhead_seconds", nil, 4}, // the calls a worker answered
		{"mcpstream_gateway_inflight", nil, 0},
		{"mcpstream_gateway_inflight_limit", nil, 3},
		{"mcpstream_gateway_sessions_cached", nil, 1},
		{"mcpstream_worker_deliveries_total", []string{"group", "demo", "outcome", "ok"}, 4},
		{"mcpstream_worker_deliveries_total", []string{"group", "demo", "outcome", "error"}, 0},
		{"mcpstream_worker_deliveries_total", []string{"group", "demo", "outcome", "redelivered"}, 0},
		{"mcpstream_worker_handler_duration_seconds", []string{"group", "demo", "kind", "tool", "name", "echo"}, 3},
		{"mcpstream_worker_handler_duration_seconds", []string{"group", "demo", "kind", "tool", "name", "sleep"}, 1},
	}
	for _, w := range want {
		if got := fams.value(t, w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	// The series that exist: one per method and outcome seen, one per
	// served method, one of refusal times, ten refusal reasons, the two
	// tools that ran.
	for name, n := range map[string]int{
		"mcpstream_gateway_requests_total":           8,
		"mcpstream_gateway_request_duration_seconds": 5,
		"mcpstream_gateway_refusal_duration_seconds": 1,
		"mcpstream_gateway_refusals_total":           10,
		"mcpstream_worker_handler_duration_seconds":  2,
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != n {
			t.Errorf("%s: %d series (%v), want %d", name, got, err, n)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == sid || strings.Contains(l.GetValue(), "no-such-tool") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

var metricsRE = regexp.MustCompile(`metrics (http://\S+/metrics)`)

// scrape fetches and parses a /metrics endpoint.
func scrape(t *testing.T, url string) families {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: status %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// TestMetricsEndpoint: `mcpstream dev --metrics-addr` serves Prometheus
// text on /metrics with the gateway's, the workers' and the Go runtime's
// metrics, and the OpenTelemetry MCP metrics beside them; the official
// client's calls are counted there.
func TestMetricsEndpoint(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--metrics-addr", "127.0.0.1:0", "--id", "gw-scraped")
	url := dev.waitLine(metricsRE, 10*time.Second)[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, endpoint, "metrics", nil)
	const calls = 5
	for i := range calls {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint("call ", i)}})
		if err != nil || res.IsError {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
	}
	var fams families
	testkit.Eventually(t, fmt.Sprintf("%d tools/call counted", calls), 10*time.Second, func() bool {
		fams = scrape(t, url)
		return fams.value(t, "mcpstream_gateway_requests_total", "method", "tools/call", "outcome", "ok") >= calls
	})
	if got := fams.value(t, "mcpstream_gateway_requests_total", "gateway", "gw-scraped", "method", "tools/call", "outcome", "ok"); got != calls {
		t.Errorf("tools/call ok = %v, want %d", got, calls)
	}
	if got := fams.value(t, "mcpstream_gateway_requests_total", "method", "initialize", "outcome", "ok"); got != 1 {
		t.Errorf("initialize ok = %v, want 1", got)
	}
	if got := fams.value(t, "mcpstream_worker_deliveries_total", "group", "demo", "outcome", "ok"); got < calls {
		t.Errorf("demo deliveries ok = %v, want at least %d", got, calls)
	}
	if got := fams.value(t, "mcpstream_worker_handler_duration_seconds", "group", "demo", "kind", "tool", "name", "echo"); got != calls {
		t.Errorf("echo handler timed %v times, want %d", got, calls)
	}
	// The OpenTelemetry MCP metric, on the same endpoint.
	if got := fams.value(t, "mcp_server_operation_duration_seconds", "mcp_method_name", "tools/call", "gen_ai_tool_name", "echo"); got != calls {
		t.Errorf("mcp.server.operation.duration of echo: %v calls, want %d", got, calls)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "mcpstream_gateway_inflight_limit", "mcpstream_gateway_refusals_total"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}
	dev.stop()
}
