package itest

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestDeadWorkerCostsSeconds: with the default settings, one `mcpstream
// worker` serving sleep (20 ms) under 16 closed-loop sessions of the
// official client is killed with SIGKILL and another started half a second
// later. Every call is answered, and the calls the dead worker held are
// answered within 5 s of its death (the default AckWait of 4 s, not 30).
func TestDeadWorkerCostsSeconds(t *testing.T) {
	_, endpoint, natsURL := startDev(t, true, "--examples", "0")
	a := start(t, "worker-a", "worker", "--nats", natsURL, "--log-level", "warn", "--concurrency", "16")
	a.waitLine(workerRE, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	load := startLoad(t, ctx, endpoint, 16, "sleep", map[string]any{"ms": 20})

	// A second of load, then the worker dies; another starts half a
	// second later (the scenario's own timing, as an operator's restart).
	load.awaitCalls(t, 200)
	killed := time.Now()
	a.send(syscall.SIGKILL)
	a.wait(10 * time.Second)
	<-time.After(500 * time.Millisecond)
	b := start(t, "worker-b", "worker", "--nats", natsURL, "--log-level", "warn", "--concurrency", "16")
	b.waitLine(workerRE, 30*time.Second)
	load.awaitCalls(t, load.count()+500) // served by the new worker
	load.awaitStartedAfter(t, killed.Add(6*time.Second))
	results := load.finish()

	held, slowest := 0, time.Duration(0)
	for _, r := range results {
		if r.err != nil {
			t.Errorf("a call failed: %v (started %s after the death)", r.err, r.start.Sub(killed))
			continue
		}
		if r.start.Before(killed) && r.end.After(killed) {
			held++
			slowest = max(slowest, r.end.Sub(killed))
		}
	}
	t.Logf("%d calls, %d in flight at the death, the last of them answered %s after it", len(results), held, slowest)
	if held == 0 {
		t.Fatal("no call was in flight when the worker died")
	}
	if slowest > 5*time.Second {
		t.Errorf("the calls the dead worker held were answered up to %s after its death, want within 5s", slowest)
	}
}
