package itest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/internal/testkit"
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

	type result struct {
		start, end time.Time
		err        error
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 16 {
		cs := connectOfficial(t, ctx, endpoint, fmt.Sprintf("dead-worker-%d", s), nil)
		defer cs.Close()
		if s == 0 {
			testkit.Eventually(t, "sleep listed", 10*time.Second, func() bool {
				res, err := cs.ListTools(ctx, nil)
				return err == nil && slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "sleep" })
			})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second) // a client's usual timeout
				r := result{start: time.Now()}
				res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 20}})
				ccancel()
				r.end = time.Now()
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %v", res.Content)
				}
				r.err = err
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	// A second of load, then the worker dies; another starts half a
	// second later (the scenario's own timing, as an operator's restart).
	awaitCalls := func(n int) {
		testkit.Eventually(t, fmt.Sprintf("%d calls answered", n), 30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(results) >= n
		})
	}
	awaitCalls(200)
	killed := time.Now()
	a.send(syscall.SIGKILL)
	a.wait(10 * time.Second)
	<-time.After(500 * time.Millisecond)
	b := start(t, "worker-b", "worker", "--nats", natsURL, "--log-level", "warn", "--concurrency", "16")
	b.waitLine(workerRE, 30*time.Second)
	mu.Lock()
	n := len(results)
	mu.Unlock()
	awaitCalls(n + 500) // served by the new worker
	testkit.Eventually(t, "the calls held at the death answered", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(results) > 0 && results[len(results)-1].start.After(killed.Add(6*time.Second))
	})
	close(stop)
	wg.Wait()

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
