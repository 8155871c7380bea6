package itest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/streams"
)

// TestNATSRestartUnderLoad: the NATS server of a deployment (a gateway
// and a worker, each its own process) is stopped, and started again two
// seconds later on the same port and store, under 16 closed-loop sessions
// of the official client. The gateway and the worker reconnect without restarting, every
// session goes on, and no call waits for its deadline: each is answered,
// or refused at once with an explicit error.
func TestNATSRestartUnderLoad(t *testing.T) {
	dir := t.TempDir()
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Shutdown() }) // the one running at the end, after the sessions close
	url := emb.ClientURL()
	w := start(t, "worker", "worker", "--nats", url, "--log-level", "warn", "--concurrency", "16")
	w.waitLine(workerRE, 30*time.Second)
	gw := start(t, "gateway", "gateway", "--nats", url, "--addr", "127.0.0.1:0", "--log-level", "warn")
	endpoint := gw.waitLine(endpointRE, 30*time.Second)[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	load := startLoad(t, ctx, endpoint, 16, "sleep", map[string]any{"ms": 20})
	load.awaitCalls(t, 200)
	listen := emb.Server().Addr().String()
	emb.Shutdown()
	stopped := time.Now()
	<-time.After(2 * time.Second) // the scenario: NATS down for two seconds
	if emb, err = streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir, Listen: listen}); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	load.awaitCalls(t, load.count()+500)
	results := load.finish()

	failed, slowest := 0, time.Duration(0)
	for _, r := range results {
		if r.err != nil {
			failed++
			t.Logf("a call started %s after the stop failed after %s: %v", r.start.Sub(stopped), r.end.Sub(r.start), r.err)
			if errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("a call hung until the client gave up: %v", r.err)
			}
		}
		slowest = max(slowest, r.end.Sub(r.start))
	}
	t.Logf("%d calls, %d failed; NATS down %s; the slowest call took %s", len(results), failed, restarted.Sub(stopped), slowest)
	// Calls made while NATS is down wait for it (publishes are retried
	// with backoff, the clients' connections stay open): about the
	// downtime, plus the reconnect.
	if limit := restarted.Sub(stopped) + 5*time.Second; slowest > limit {
		t.Errorf("a call took %s, more than the downtime and 5s: it waited for a deadline", slowest)
	}
}
