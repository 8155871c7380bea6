package workers_test

import (
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/workers"
)

// TestWaitingEnvelopeIsNotRedelivered: an envelope that waits for a free
// handler (every one busy) is not redelivered to another replica either,
// however long it waits: the replica tells the server it holds it.
func TestWaitingEnvelopeIsNotRedelivered(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("busy", p), workers.Options{Concurrency: 1})
	k1, k2 := h.keyFor(0), h.keyFor(0)
	h.publish("busy", h.envelope(k1, "block", map[string]any{}))
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not start")
	}
	ack2 := h.publish("busy", h.envelope(k2, "block", map[string]any{}))
	// The second waits for the only handler for 2.5 AckWaits: without
	// progress acks it would be redelivered.
	select {
	case again := <-p.started:
		t.Fatalf("%s started while the only handler was busy", again)
	case <-time.After(5 * h.topo.AckWait / 2):
	}
	if info := h.consumerInfo("busy", 0); info.NumRedelivered != 0 || info.NumAckPending != 2 {
		t.Errorf("while waiting: redelivered %d ackPending %d, want 0 and 2", info.NumRedelivered, info.NumAckPending)
	}
	close(p.release)
	h.await(k1, 10*time.Second)
	h.await(k2, 10*time.Second)
	h.waitAcked("busy", 0, ack2.Sequence)
	if info := h.consumerInfo("busy", 0); info.NumRedelivered != 0 {
		t.Errorf("redelivered %d", info.NumRedelivered)
	}
}

// TestBufferedCopyRunsOnce: a replica whose only handler is busy holds
// envelopes of a tool that must not run twice, buffered unstarted; the
// server redelivers them after AckWait to a second replica, which runs
// them. When the first replica gets to its copies, it answers them from
// the stored results (their claims are done) and runs none again.
func TestBufferedCopyRunsOnce(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("dup", p), workers.Options{Concurrency: 1, Batch: 8})
	k0 := h.keyFor(0)
	h.publish("dup", h.envelope(k0, "block", map[string]any{}))
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not start")
	}
	var keys []string
	for range 4 {
		k := h.keyFor(0)
		keys = append(keys, k)
		h.publish("dup", h.envelope(k, "count", map[string]any{}))
	}
	testkit.Eventually(t, "the busy replica holding all 5", 10*time.Second, func() bool {
		return h.consumerInfo("dup", 0).NumAckPending == 5
	})
	// The first waits for the handler, kept; the 3 behind it are
	// redelivered to a free replica after AckWait, and run there.
	h.run(testGroup("dup", p), workers.Options{Concurrency: 4})
	testkit.Eventually(t, "3 runs on the second replica", 15*time.Second, func() bool { return p.runs.Load() == 3 })
	close(p.release)
	h.await(k0, 10*time.Second)
	for _, k := range keys {
		h.await(k, 10*time.Second)
	}
	testkit.Eventually(t, "every envelope acknowledged", 15*time.Second, func() bool {
		return h.consumerInfo("dup", 0).NumAckPending == 0
	})
	if n := p.runs.Load(); n != 4 {
		t.Errorf("count ran %d times for 4 requests", n)
	}
}

// TestDeadHolderClaimIsTakenOver: a replica that dies while it runs a
// request that must not run twice leaves its claim behind; the replica
// the server redelivers the request to takes the stale claim over and
// runs it, without waiting for the claim to expire.
func TestDeadHolderClaimIsTakenOver(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	nc, _ := h.run(testGroup("heir", p), workers.Options{Concurrency: 1, DrainTimeout: -1})
	k := h.keyFor(0)
	h.publish("heir", h.envelope(k, "block", map[string]any{}))
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not start")
	}
	nc.Close() // the replica is gone for the server: no more acks, no renewals
	died := time.Now()
	h.run(testGroup("heir", p), workers.Options{Concurrency: 1})
	select {
	case again := <-p.started:
		if again != k {
			t.Fatalf("%s started, want %s", again, k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dead replica's request was not run again")
	}
	if took := time.Since(died); took >= h.topo.AckWait*2 {
		t.Errorf("run again %s after the death: it waited for the claim to expire (%s)", took, 2*h.topo.AckWait)
	}
	close(p.release)
	if got := h.text(h.await(k, 10*time.Second)); got != "released ctxErr=<nil>" {
		t.Errorf("reply %q", got)
	}
}

// BenchmarkCallNotIdempotent is one call after another of a tool that
// must not run twice, on one replica: publish, claim, run, store the
// result, reply, mark the claim done, acknowledge.
func BenchmarkCallNotIdempotent(b *testing.B) {
	h := newHarness(b)
	h.run(testGroup("bench", newProbe()), workers.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.await(h.call("bench", "echo", map[string]any{"text": "x"}), 10*time.Second)
	}
}
