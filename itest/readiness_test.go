package itest

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// probe GETs url and returns its status and body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

var retiringRE = regexp.MustCompile(`not ready, draining in`)

// TestReadinessAcrossProcesses runs NATS (dev), a worker and a gateway as
// processes with --metrics-addr. /readyz answers 200 on the gateway's MCP
// listener and on both metrics endpoints once they serve. On SIGTERM the
// gateway (with --retire-delay) turns unready while it still accepts
// clients, then exits 0. When NATS goes away the worker turns unready,
// and /healthz, the liveness check, stays 200.
func TestReadinessAcrossProcesses(t *testing.T) {
	dev, _, natsURL := startDev(t, true, "--examples", "0")
	w := start(t, "worker", "worker", "--nats", natsURL, "--log-level", "warn", "--metrics-addr", "127.0.0.1:0")
	workerBase := strings.TrimSuffix(w.waitLine(metricsRE, 30*time.Second)[1], "/metrics")
	w.waitLine(workerRE, 30*time.Second)
	gw := start(t, "gateway", "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn",
		"--metrics-addr", "127.0.0.1:0", "--retire-delay", "30s")
	gwMetrics := strings.TrimSuffix(gw.waitLine(metricsRE, 30*time.Second)[1], "/metrics")
	endpoint := gw.waitLine(endpointRE, 30*time.Second)[1]
	gwBase := strings.TrimSuffix(endpoint, "/mcp")

	for _, base := range []string{gwBase, gwMetrics, workerBase} {
		for _, path := range []string{"/readyz", "/healthz"} {
			if status, body := probe(t, base+path); status != http.StatusOK {
				t.Fatalf("%s%s: %d %s, want 200", base, path, status, body)
			}
		}
	}

	// Retiring: unready at once, still serving until the delay is over.
	gw.send(syscall.SIGTERM)
	gw.waitLine(retiringRE, 10*time.Second)
	for _, base := range []string{gwBase, gwMetrics} {
		if status, body := probe(t, base+"/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "retiring") {
			t.Errorf("%s/readyz while retiring: %d %q, want 503 saying it retires", base, status, body)
		}
	}
	initSession(t, endpoint) // still accepted
	if status, _ := probe(t, gwBase+"/healthz"); status != http.StatusOK {
		t.Errorf("gateway /healthz while retiring: %d, want 200", status)
	}
	gw.send(syscall.SIGTERM)                          // a second signal cuts the delay short
	if code := gw.wait(20 * time.Second); code != 0 { // the delay is 30s
		t.Errorf("gateway exited with status %d, want 0", code)
	}

	// NATS gone: the worker is alive but not ready.
	dev.stop()
	testkit.Eventually(t, "the worker unready without NATS", 20*time.Second, func() bool {
		status, body := probe(t, workerBase+"/readyz")
		return status == http.StatusServiceUnavailable && strings.Contains(body, "nats")
	})
	if status, body := probe(t, workerBase+"/healthz"); status != http.StatusOK {
		t.Errorf("worker /healthz without NATS: %d %s, want 200", status, body)
	}
}
