package workers_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
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

// TestBufferedCopyRunsOnce: a replica whose handlers are all busy holds
// envelopes of a tool that must not run twice, buffered unstarted; the
// server redelivers them after AckWait to a second replica, which runs
// them. When the first replica gets to its copies, it answers them from
// the stored results (their claims are done) and runs none again: with
// one handler, and with several, where the copies behind the first are
// handed to free handlers at once, one after another.
func TestBufferedCopyRunsOnce(t *testing.T) {
	for _, c := range []struct{ handlers, copies int }{{1, 4}, {4, 8}} {
		t.Run(fmt.Sprintf("handlers=%d", c.handlers), func(t *testing.T) { bufferedCopiesRunOnce(t, c.handlers, c.copies) })
	}
}

// bufferedCopiesRunOnce fills a replica's handlers with blocked calls,
// buffers n calls of count behind them, and checks that count runs n
// times once a second replica has run the copies the server redelivered
// to it and the first replica's handlers are free again.
func bufferedCopiesRunOnce(t *testing.T, handlers, n int) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("dup", p), workers.Options{Concurrency: handlers, Batch: handlers + n})
	var blocked []string
	for range handlers {
		k := h.keyFor(0)
		blocked = append(blocked, k)
		h.publish("dup", h.envelope(k, "block", map[string]any{}))
	}
	for range handlers {
		select {
		case <-p.started:
		case <-time.After(10 * time.Second):
			t.Fatal("handler did not start")
		}
	}
	var keys []string
	for range n {
		k := h.keyFor(0)
		keys = append(keys, k)
		h.publish("dup", h.envelope(k, "count", map[string]any{}))
	}
	testkit.Eventually(t, "the busy replica holding them all", 10*time.Second, func() bool {
		return h.consumerInfo("dup", 0).NumAckPending == handlers+n
	})
	// The first waits for a handler, kept; the ones behind it are
	// redelivered to a free replica after AckWait, and run there.
	h.run(testGroup("dup", p), workers.Options{Concurrency: n})
	testkit.Eventually(t, "the copies run on the second replica", 15*time.Second, func() bool { return p.runs.Load() == int64(n-1) })
	close(p.release)
	for _, k := range append(blocked, keys...) {
		h.await(k, 10*time.Second)
	}
	testkit.Eventually(t, "every envelope acknowledged", 15*time.Second, func() bool {
		return h.consumerInfo("dup", 0).NumAckPending == 0
	})
	if got := p.runs.Load(); got != int64(n) {
		t.Errorf("count ran %d times for %d requests", got, n)
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

// TestCancelledWhileBuffered: a request the client cancels while its
// envelope waits in a replica's buffers, behind a busy pool, does not run
// when a handler is free: it is acknowledged without an answer, and the
// request behind it runs.
func TestCancelledWhileBuffered(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("cw", p), workers.Options{Concurrency: 1, Batch: 4})
	envs := make([]*schema.Envelope, 3)
	for i, tool := range []string{"block", "count", "count"} {
		envs[i] = h.envelope(h.keyFor(0), tool, map[string]any{})
		envs[i].RequestID = strconv.Itoa(i + 1)
		h.publish("cw", envs[i])
		if i == 0 {
			awaitValue(t, p.started, 10*time.Second, "the first handler to start")
		}
	}
	testkit.Eventually(t, "the replica holding all 3", 10*time.Second, func() bool {
		return h.consumerInfo("cw", 0).NumAckPending == 3
	})
	// The second is cancelled while it waits, then the first while it
	// runs, which frees the handler: the replica handles cancellations in
	// order, so it knows of the second's when its turn comes.
	nc := h.connect()
	for _, env := range []*schema.Envelope{envs[1], envs[0]} {
		b, err := (&schema.Cancel{Session: env.Session, RequestID: env.RequestID, Reason: "changed my mind"}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(streams.CancelSubject, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.text(h.await(envs[2].Key, 10*time.Second)); got != "counted attempt 1" {
		t.Errorf("the third request's reply %q", got)
	}
	testkit.Eventually(t, "every envelope acknowledged", 10*time.Second, func() bool {
		return h.consumerInfo("cw", 0).NumAckPending == 0
	})
	if n := p.runs.Load(); n != 1 {
		t.Errorf("count ran %d times, want once: the cancelled request ran", n)
	}
	if n := h.drainReplies(); n[envs[0].Key]+n[envs[1].Key] != 0 {
		t.Errorf("replies to cancelled requests: %v", n)
	}
}

// heldByDeadReplica publishes a call of name to group on partition 0 and
// takes its first delivery, as a replica of group that dies before it
// acknowledges: the server redelivers it AckWait later. It returns the
// call's key.
func (h *harness) heldByDeadReplica(group, name string) string {
	h.t.Helper()
	consumers, err := streams.EnsureGroup(h.ctx(), h.js, h.topo, group)
	if err != nil {
		h.t.Fatal(err)
	}
	k := h.keyFor(0)
	h.publish(group, h.envelope(k, name, map[string]any{}))
	batch, err := consumers[0].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	if m := <-batch.Messages(); m == nil {
		h.t.Fatalf("no delivery of %s: %v", k, batch.Error())
	}
	return k
}

// TestClaimNotMadeDelaysRedelivery: a request that must not run twice,
// delivered again to a replica that cannot make its claim (the result
// bucket refuses writes; here it is sealed, as it reads), is not run
// unclaimed: its redelivery is delayed, as when the stored result cannot
// be read, and the last delivery runs it, once.
func TestClaimNotMadeDelaysRedelivery(t *testing.T) {
	h := newHarness(t) // AckWait 1s, MaxDeliver 5
	p := newProbe()
	k := h.heldByDeadReplica("unclaimed", "count")
	s, err := h.js.Stream(h.ctx(), "KV_"+streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Sealed = true
	if _, err := h.js.UpdateStream(h.ctx(), cfg); err != nil {
		t.Fatalf("sealing the result bucket: %v", err)
	}
	h.run(testGroup("unclaimed", p), workers.Options{DrainTimeout: -1})

	want := fmt.Sprintf("counted attempt %d", h.topo.MaxDeliver)
	if got := h.text(h.await(k, 20*time.Second)); got != want {
		t.Errorf("answered %q, want %q: run unclaimed before the last delivery", got, want)
	}
	if n := p.runs.Load(); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
}

// TestClaimlessBucketRunsUnclaimed: a result bucket provisioned before
// claims, its per-message TTLs disabled, can never take a claim: a request
// that must not run twice, delivered again, runs at once, unclaimed, its
// redelivery not delayed.
func TestClaimlessBucketRunsUnclaimed(t *testing.T) {
	h := newHarness(t) // AckWait 1s
	p := newProbe()
	if err := h.js.DeleteKeyValue(h.ctx(), streams.ResultBucket); err != nil {
		t.Fatal(err)
	}
	cfg := h.topo.ResultConfig()
	cfg.LimitMarkerTTL = 0
	if _, err := h.js.CreateKeyValue(h.ctx(), cfg); err != nil {
		t.Fatalf("creating a result bucket without per-message TTLs: %v", err)
	}
	k := h.heldByDeadReplica("claimless", "count")
	h.run(testGroup("claimless", p), workers.Options{})

	if got := h.text(h.await(k, 10*time.Second)); got != "counted attempt 2" {
		t.Errorf("answered %q, want %q: the redelivery run at once", got, "counted attempt 2")
	}
}

// TestPublishedAgainIsClaimed: a copy published again (Attempt 2 on its
// first delivery: a gateway's publish past the duplicate window, or a
// draining replica's hand-back on the last delivery) of a request that
// must not run twice is claimed as a redelivery is. Here its claim says a
// run answered it (done, the result no longer kept): the copy is
// acknowledged without running, and nothing is sent.
func TestPublishedAgainIsClaimed(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	k := h.keyFor(0)
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(h.ctx(), streams.ClaimKey(k), []byte("done")); err != nil {
		t.Fatal(err)
	}
	h.run(testGroup("again", p), workers.Options{})
	env := h.envelope(k, "count", map[string]any{})
	env.Attempt = 2
	ack := h.publish("again", env)
	h.waitAcked("again", h.partition(k), ack.Sequence)
	if n := p.runs.Load(); n != 0 {
		t.Errorf("the copy ran %d times, want none: its claim says it ran", n)
	}
	if n := h.drainReplies()[k]; n != 0 {
		t.Errorf("%d replies for the copy, want none", n)
	}
}
