package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it holds, failing the
// test after timeout with what it waited for. It is for state that another
// process or goroutine changes with no event to wait on (a gateway's
// counters, another gateway's cache, a consumer's pending count); where
// an event can be awaited, await it instead.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		<-tick.C
	}
}
