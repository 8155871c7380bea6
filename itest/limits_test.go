package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

type rpcError struct {
	Error *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeError(t *testing.T, body []byte) rpcError {
	t.Helper()
	var e rpcError
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("want a JSON-RPC error, got %s (%v)", body, err)
	}
	return e
}

func sleepBody(id, ms int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":%d}}}`, id, ms)
}

// awaitInFlight waits until the gateway holds n requests on workers.
func awaitInFlight(t *testing.T, gw *gateway.Gateway, n int64) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d calls in flight", n), 10*time.Second, func() bool { return gw.InFlight() == n })
}

// TestCallDeadline: a call that outlives the gateway's deadline is answered
// with -32001 at the deadline, not left hanging.
func TestCallDeadline(t *testing.T) {
	s := newStack(t, gateway.Config{CallTimeout: 300 * time.Millisecond})
	sid := initSession(t, s.url)
	start := time.Now()
	r := post(t, s.url, sleepBody(1, 5000), "Mcp-Session-Id", sid)
	took := time.Since(start)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := decodeError(t, r.body); e.Error.Code != -32001 {
		t.Fatalf("code %d, want -32001: %s", e.Error.Code, r.body)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("answered after %s, want about the 300ms deadline", took)
	}
}

// TestAdmission: beyond the per-session and per-gateway in-flight caps a
// request is refused at once with 503, Retry-After and retry data; it is
// not queued. Requests within the caps complete.
func TestAdmission(t *testing.T) {
	s := newStack(t, gateway.Config{MaxSessionInFlight: 2, MaxInFlight: 3})
	sidA, sidB := initSession(t, s.url), initSession(t, s.url)

	var wg sync.WaitGroup
	results := make(chan rawResponse, 3)
	call := func(i int, sid string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- post(t, s.url, sleepBody(i, 1500), "Mcp-Session-Id", sid)
		}()
	}
	refused := func(name, sid, reason string) {
		t.Helper()
		start := time.Now()
		r := post(t, s.url, sleepBody(9, 10), "Mcp-Session-Id", sid)
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: refusal took %s; it must not wait", name, took)
		}
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: status %d Retry-After %q: %s", name, r.status, r.header.Get("Retry-After"), r.body)
		}
		e := decodeError(t, r.body)
		var data struct{ RetryAfterMs int }
		if e.Error.Code != -32000 || json.Unmarshal(e.Error.Data, &data) != nil || data.RetryAfterMs <= 0 ||
			!strings.Contains(e.Error.Message, reason) {
			t.Fatalf("%s: error %s", name, r.body)
		}
	}
	// Session A at its cap of 2 while the gateway has room: the session's
	// own limit answers.
	call(0, sidA)
	call(1, sidA)
	awaitInFlight(t, s.gw, 2)
	refused("session cap", sidA, "session")
	// The gateway full (3 of 3): any session is refused.
	call(2, sidB)
	awaitInFlight(t, s.gw, 3)
	refused("gateway cap", sidB, "gateway")

	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "slept 1500 ms") {
			t.Errorf("admitted call: status %d: %s", r.status, r.body)
		}
	}
	if n := s.gw.InFlight(); n != 0 {
		t.Fatalf("in flight %d after all calls returned", n)
	}
	// With room again, the same session is served.
	if r := post(t, s.url, sleepBody(10, 1), "Mcp-Session-Id", sidA); r.status != http.StatusOK {
		t.Fatalf("after the burst: status %d: %s", r.status, r.body)
	}
}

// TestDevDrainsOnSIGTERM: `mcpstream dev` stopped while calls run lets them
// finish, answers them, and exits 0.
func TestDevDrainsOnSIGTERM(t *testing.T) {
	dev, endpoint, natsURL := startDev(t, true)
	js := jetStreamAt(t, natsURL)
	const n = 6
	sid := initSession(t, endpoint)
	var wg sync.WaitGroup
	results := make(chan rawResponse, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- post(t, endpoint, sleepBody(i, 1000+i), "Mcp-Session-Id", sid)
		}()
	}
	awaitConsumers(t, js, "all calls running", 30*time.Second, func(c consumerTotals) bool { return c.ackPending == n })
	if code := dev.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("dev exited %d after SIGTERM", code)
	}
	m := dev.waitLine(regexp.MustCompile(`draining gateway \S+ \((\d+) in flight\)`), time.Second)
	wg.Wait()
	close(results)
	answered := 0
	for r := range results {
		if r.status == http.StatusOK && strings.Contains(string(r.body), "slept 10") {
			answered++
		} else {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}
	if answered != n || m[1] != fmt.Sprint(n) {
		t.Fatalf("%d of %d calls answered; %s in flight when draining began", answered, n, m[1])
	}
}

// TestPrincipals: behind an authenticating proxy (PrincipalHeader), a
// session belongs to its principal (another principal gets 404 for it, and
// cannot delete it), and a principal's calls in flight over all its
// sessions are capped; other principals are not affected.
func TestPrincipals(t *testing.T) {
	const hdr = "X-Auth-Request-User"
	s := newStack(t, gateway.Config{PrincipalHeader: hdr, MaxPrincipalInFlight: 2})
	as := func(user string) []string { return []string{hdr, user} }
	initAs := func(user string) string {
		t.Helper()
		r := post(t, s.url, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"p","version":"1"}}}`, as(user)...)
		if r.status != http.StatusOK || r.header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize as %s: status %d", user, r.status)
		}
		return r.header.Get("Mcp-Session-Id")
	}
	alice1, alice2, bob := initAs("alice"), initAs("alice"), initAs("bob")

	// A session is its principal's alone.
	if r := post(t, s.url, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, append(as("bob"), "Mcp-Session-Id", alice1)...); r.status != http.StatusNotFound {
		t.Fatalf("bob using alice's session: status %d, want 404", r.status)
	}
	if r := post(t, s.url, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, "Mcp-Session-Id", alice1); r.status != http.StatusNotFound {
		t.Fatalf("no principal using alice's session: status %d, want 404", r.status)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.url, nil)
	if r := do(t, req, append(as("bob"), "Mcp-Session-Id", alice1)...); r.status != http.StatusNotFound {
		t.Fatalf("bob deleting alice's session: status %d, want 404", r.status)
	}

	// Alice's two calls in flight, over two sessions, fill her cap.
	var wg sync.WaitGroup
	results := make(chan rawResponse, 2)
	for i, sid := range []string{alice1, alice2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- post(t, s.url, sleepBody(i, 1000), append(as("alice"), "Mcp-Session-Id", sid)...)
		}()
	}
	awaitInFlight(t, s.gw, 2)
	r := post(t, s.url, sleepBody(3, 10), append(as("alice"), "Mcp-Session-Id", alice2)...)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "principal") {
		t.Fatalf("alice's third call: status %d: %s", r.status, r.body)
	}
	if r := post(t, s.url, sleepBody(4, 10), append(as("bob"), "Mcp-Session-Id", bob)...); r.status != http.StatusOK || !strings.Contains(string(r.body), "slept 10 ms") {
		t.Fatalf("bob while alice is at her cap: status %d: %s", r.status, r.body)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "slept 10") {
			t.Errorf("alice's admitted call: status %d: %s", r.status, r.body)
		}
	}
	// Her slots are free again.
	if r := post(t, s.url, sleepBody(5, 1), append(as("alice"), "Mcp-Session-Id", alice1)...); r.status != http.StatusOK {
		t.Fatalf("alice after her calls returned: status %d: %s", r.status, r.body)
	}
}

// TestSustainedLoadOutlivesStreamLimits: a request stream keeps answered
// requests for replay within its limits, so sustained traffic fills any
// byte budget. Once it is full the oldest requests make room: calls go on
// being served, with no 503 "request stream full", and the stream stays
// within its bytes.
func TestSustainedLoadOutlivesStreamLimits(t *testing.T) {
	const maxBytes = 16 << 10
	topo := streams.Topology{MaxBytes: maxBytes}
	s := newStack(t, gateway.Config{Topology: topo})
	sid := initSession(t, s.url)
	text := strings.Repeat("x", 200)
	// One session routes every call to one partition; 300 calls of over
	// 200 bytes each are several times its budget.
	for i := range 300 {
		r := post(t, s.url, echoBody(i, text), "Mcp-Session-Id", sid)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), text) {
			t.Fatalf("call %d: status %d: %s", i, r.status, r.body)
		}
	}
	js := jetStreamOver(t, func() (*nats.Conn, error) { return s.emb.Connect() })
	var stored uint64
	for p := range topo.WithDefaults().Partitions {
		st, err := js.Stream(context.Background(), streams.StreamName(p))
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Bytes > maxBytes {
			t.Errorf("%s holds %d bytes, over its %d", streams.StreamName(p), info.State.Bytes, maxBytes)
		}
		stored += info.State.Msgs
	}
	if stored == 0 || stored >= 300 {
		t.Errorf("streams hold %d requests; want the newest within the budget, fewer than the 300 sent", stored)
	}
}

// TestAdmissionFlags: the binary's admission flags reach the gateway. With
// --max-inflight 2 the adaptive limit is 2; with --max-session-inflight 1 a
// session's second call, while its first sleeps, is refused with 503.
func TestAdmissionFlags(t *testing.T) {
	dev, endpoint, _ := startDev(t, false, "--metrics-addr", "127.0.0.1:0",
		"--max-inflight", "2", "--max-session-inflight", "1")
	metrics := dev.waitLine(metricsRE, 10*time.Second)[1]
	if got := scrape(t, metrics).value(t, "mcpstream_gateway_inflight_limit"); got != 2 {
		t.Errorf("in-flight limit %v, want 2", got)
	}
	sid := initSession(t, endpoint)
	first := make(chan rawResponse, 1)
	go func() { first <- post(t, endpoint, sleepBody(1, 1500), "Mcp-Session-Id", sid) }()
	testkit.Eventually(t, "the first call in flight", 10*time.Second, func() bool {
		return scrape(t, metrics).value(t, "mcpstream_gateway_inflight") == 1
	})
	r := post(t, endpoint, sleepBody(2, 1), "Mcp-Session-Id", sid)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(decodeError(t, r.body).Error.Message, "session") {
		t.Errorf("second call of the session: status %d: %s", r.status, r.body)
	}
	if r := <-first; r.status != http.StatusOK || !strings.Contains(string(r.body), "slept 1500 ms") {
		t.Errorf("first call: status %d: %s", r.status, r.body)
	}
	dev.stop()
}

// TestCPUDoor: when the gateway's process runs out of CPU, requests wait
// before admission, where call overheads cannot see them; the gateway
// watches Go's scheduling latency instead, and lowers its in-flight limit
// to 8 per core, refusing calls beyond it with 503. Once the CPU has room
// again, served calls raise the limit.
func TestCPUDoor(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newStack(t, gateway.Config{Metrics: reg, CPUQueueTarget: 2 * time.Millisecond})
	floor := 8 * runtime.GOMAXPROCS(0)
	limit := func() float64 { return gather(t, reg).value(t, "mcpstream_gateway_inflight_limit") }
	// Saturate this process's CPU: spinners that yield every millisecond,
	// four to a core, so that each waits about 3 ms to run again.
	stopSpinning := testkit.Spin(4*runtime.GOMAXPROCS(0), time.Millisecond)
	testkit.Eventually(t, fmt.Sprintf("the limit at the CPU floor %d", floor), 20*time.Second, func() bool { return limit() == float64(floor) })
	stopSpinning()

	// At the floor: floor calls in flight, and the next is refused.
	results := make(chan rawResponse, floor)
	for i := range floor {
		sid := initSession(t, s.url)
		go func() { results <- post(t, s.url, sleepBody(i, 3000), "Mcp-Session-Id", sid) }()
	}
	awaitInFlight(t, s.gw, int64(floor))
	r := post(t, s.url, sleepBody(99, 1), "Mcp-Session-Id", initSession(t, s.url))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(decodeError(t, r.body).Error.Message, "gateway") {
		t.Fatalf("call beyond the CPU floor: status %d: %s", r.status, r.body)
	}
	for range floor {
		if r := <-results; r.status != http.StatusOK {
			t.Fatalf("admitted call: status %d: %s", r.status, r.body)
		}
	}
	// Room again: served calls raise the limit.
	sid := initSession(t, s.url)
	i := 0
	testkit.Eventually(t, "the limit above the CPU floor", 40*time.Second, func() bool {
		i++
		if r := post(t, s.url, echoBody(1000+i, "up"), "Mcp-Session-Id", sid); r.status != http.StatusOK {
			t.Fatalf("echo: status %d: %s", r.status, r.body)
		}
		return limit() > float64(floor)
	})
}
