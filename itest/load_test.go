package itest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// callResult is one call of a load run: when it started and ended, and
// its error (a tool error included).
type callResult struct {
	start, end time.Time
	err        error
}

// loadRun is closed-loop load: sessions of the official client, each
// calling a tool one call after another with a client timeout of 30 s,
// until finish.
type loadRun struct {
	mu      sync.Mutex
	results []callResult
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startLoad starts sessions sessions on endpoint calling tool with args,
// once the tool is listed.
func startLoad(t *testing.T, ctx context.Context, endpoint string, sessions int, tool string, args map[string]any) *loadRun {
	t.Helper()
	l := &loadRun{stop: make(chan struct{})}
	for s := range sessions {
		cs := connectOfficial(t, ctx, endpoint, fmt.Sprintf("%s-%d", t.Name(), s), nil)
		t.Cleanup(func() { _ = cs.Close() })
		if s == 0 {
			testkit.Eventually(t, tool+" listed", 10*time.Second, func() bool {
				res, err := cs.ListTools(ctx, nil)
				return err == nil && slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == tool })
			})
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a client's usual timeout
				r := callResult{start: time.Now()}
				res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: tool, Arguments: args})
				cancel()
				r.end = time.Now()
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %v", res.Content)
				}
				r.err = err
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// count is the number of calls ended so far.
func (l *loadRun) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// awaitCalls waits until n calls have ended.
func (l *loadRun) awaitCalls(t *testing.T, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d calls answered", n), time.Minute, func() bool { return l.count() >= n })
}

// awaitStartedAfter waits until a call that started after at has ended.
func (l *loadRun) awaitStartedAfter(t *testing.T, at time.Time) {
	t.Helper()
	testkit.Eventually(t, "a call started after "+at.Format(time.StampMilli), time.Minute, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.results) > 0 && l.results[len(l.results)-1].start.After(at)
	})
}

// finish stops the sessions' calls and returns every call's result.
func (l *loadRun) finish() []callResult {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// snapshot returns the results of the calls ended so far.
func (l *loadRun) snapshot() []callResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}
