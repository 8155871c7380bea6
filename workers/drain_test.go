package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// awaitValue returns the next value on ch, failing the test after timeout.
func awaitValue[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("waited %v for %s", timeout, what)
		panic("unreachable")
	}
}

// TestGracefulDrain: a drain lets running handlers finish (here well
// within the default DrainTimeout) with a live context; their results are
// sent and acknowledged, and the heartbeat is removed only after them.
func TestGracefulDrain(t *testing.T) {
	h := newHarnessWith(t, slowTopology)
	p := newProbe()
	reg := registry(t, h)
	_, stop := h.run(testGroup("drain", p), workers.Options{Instance: "d1"})
	k0, k1 := h.keyFor(0), h.keyFor(1)
	a0 := h.publish("drain", h.envelope(k0, "block", map[string]any{}))
	a1 := h.publish("drain", h.envelope(k1, "block", map[string]any{}))
	for i := 0; i < 2; i++ {
		select {
		case <-p.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 2 handlers started", i)
		}
	}
	removed := watchUntilRemoved(t, h, reg, streams.HeartbeatKey("drain", "d1"))
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while handlers were running", err)
	case <-removed:
		t.Fatal("heartbeat removed while handlers were running")
	case <-time.After(300 * time.Millisecond):
	}
	close(p.release)
	for _, k := range []string{k0, k1} {
		if got := h.text(h.await(k, 10*time.Second)); got != "released ctxErr=<nil>" {
			t.Errorf("%s during drain: %q, want the handler to finish with a live context", k, got)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after drain, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its handlers finished")
	}
	select {
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Error("heartbeat not removed after drain")
	}
	h.waitAcked("drain", 0, a0.Sequence)
	h.waitAcked("drain", 1, a1.Sequence)
}

// TestDrainDeadline: replica A of a group drains with a short DrainTimeout
// while its handler waits for its context to end; replica B of the same
// group is running. A's Run returns about DrainTimeout after its context
// ends, not at the envelope's deadline a minute away; the handler's context
// is cancelled with ErrDraining as its cause; A neither answers nor
// acknowledges the envelope (the handler's error is not a reply) but hands
// it back, and B runs it as its second delivery, same key, and answers on
// the envelope's ReplyTo subject.
func TestDrainDeadline(t *testing.T) {
	h := newHarnessWith(t, slowTopology) // AckWait 30s: any redelivery within the test is a hand-back
	const drain = 500 * time.Millisecond
	type run struct {
		key     string
		attempt int
	}
	startedA := make(chan run, 4)
	causeA := make(chan error, 4)
	a := workers.NewGroup("dl")
	workers.AddTool(a, workers.Tool{Name: "hold"},
		func(ctx context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			startedA <- run{c.Key, c.Attempt}
			<-ctx.Done()
			causeA <- context.Cause(ctx)
			return nil, ctx.Err()
		})
	_, stopA := h.run(a, workers.Options{Instance: "a", DrainTimeout: drain})

	k := h.keyFor(0)
	env := h.envelope(k, "hold", map[string]any{})
	env.Deadline = time.Now().Add(time.Minute).UnixNano()
	ack := h.publish("dl", env)
	if got := awaitValue(t, startedA, 10*time.Second, "A's handler to start"); got != (run{k, 1}) {
		t.Fatalf("A's handler ran %+v, want %+v", got, run{k, 1})
	}

	b := workers.NewGroup("dl")
	workers.AddTool(b, workers.Tool{Name: "hold"},
		func(_ context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			return workers.TextResult(fmt.Sprintf("B ran %s, attempt %d", c.Key, c.Attempt)), nil
		})
	h.run(b, workers.Options{Instance: "b"})

	began := time.Now()
	if err := stopA(); err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	took := time.Since(began)
	t.Logf("A's Run returned %v after its context ended (DrainTimeout %v)", took, drain)
	if took < drain || took > drain+5*time.Second {
		t.Errorf("A's Run returned %v after its context ended, want about DrainTimeout %v", took, drain)
	}
	if cause := awaitValue(t, causeA, time.Second, "A's handler to see its context end"); !errors.Is(cause, workers.ErrDraining) {
		t.Errorf("A's handler context ended with cause %v, want ErrDraining", cause)
	}

	// The first reply for k: A sent none before handing the envelope back,
	// and the hand-back came before B's delivery.
	r := h.await(k, 10*time.Second)
	if got, want := h.text(r), fmt.Sprintf("B ran %s, attempt 2", k); got != want || r.Cached {
		t.Errorf("reply %q (cached %v), want %q from B", got, r.Cached, want)
	}
	info := h.waitAcked("dl", 0, ack.Sequence)
	if info.Delivered.Consumer != 2 {
		t.Errorf("%d deliveries, want 2: A's, then B's", info.Delivered.Consumer)
	}
	if n := h.drainReplies()[k]; n != 0 {
		t.Errorf("%d more replies for %s, want B's alone", n, k)
	}
	select {
	case again := <-startedA:
		t.Errorf("A ran %+v after its drain", again)
	default:
	}
}

// TestDrainDeadlineReleasesClaim: a replica that holds a request's claim
// (its second delivery, of a tool that must not run twice) and is cut
// short by its drain deadline releases the claim as it hands the envelope
// back: the replica the server gives it to at once runs it, rather than
// finding it held and leaving it for AckWait (30 s here).
func TestDrainDeadlineReleasesClaim(t *testing.T) {
	h := newHarnessWith(t, slowTopology)
	const group = "rc"
	started := make(chan int, 4)
	a := workers.NewGroup(group)
	workers.AddTool(a, workers.Tool{Name: "hold"},
		func(ctx context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			started <- c.Attempt
			<-ctx.Done()
			return nil, ctx.Err()
		})
	k := h.keyFor(0)
	env := h.envelope(k, "hold", map[string]any{})
	env.Deadline = time.Now().Add(time.Minute).UnixNano()
	h.publish(group, env)
	// A first delivery that nobody runs: the next one is claimed.
	consumers, err := streams.EnsureGroup(h.ctx(), h.js, h.topo, group)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := consumers[0].Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	_, stopA := h.run(a, workers.Options{Instance: "a", DrainTimeout: 200 * time.Millisecond})
	if got := awaitValue(t, started, 10*time.Second, "A's handler to start"); got != 2 {
		t.Fatalf("A ran attempt %d, want 2", got)
	}
	results, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := results.Get(h.ctx(), streams.ClaimKey(k)); err != nil {
		t.Fatalf("A runs the request unclaimed: %v", err)
	}
	b := workers.NewGroup(group)
	workers.AddTool(b, workers.Tool{Name: "hold"},
		func(_ context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			return workers.TextResult(fmt.Sprintf("B ran attempt %d", c.Attempt)), nil
		})
	h.run(b, workers.Options{Instance: "b"})
	if err := stopA(); err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	if got := h.text(h.await(k, 10*time.Second)); got != "B ran attempt 3" {
		t.Errorf("reply %q, want B's run of the third delivery", got)
	}
}

// TestDrainDeadlineKeepsAFinishedRun: a handler of a tool that must not
// run twice, cut short by its replica's drain deadline, that finishes its
// work anyway and returns a result: that result is the request's answer
// (stored, sent and acknowledged), and the replica running beside it does
// not run the request again, as it does a run that returned its
// context's error (TestDrainDeadline).
func TestDrainDeadlineKeepsAFinishedRun(t *testing.T) {
	h := newHarnessWith(t, slowTopology) // AckWait 30s: any redelivery within the test is a hand-back
	const group = "fin"
	started := make(chan struct{}, 1)
	a := workers.NewGroup(group)
	workers.AddTool(a, workers.Tool{Name: "finish"},
		func(ctx context.Context, _ *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			return workers.TextResult("A finished after " + context.Cause(ctx).Error()), nil
		})
	_, stopA := h.run(a, workers.Options{Instance: "a", DrainTimeout: 200 * time.Millisecond})
	k := h.keyFor(0)
	env := h.envelope(k, "finish", map[string]any{})
	env.Deadline = time.Now().Add(time.Minute).UnixNano()
	ack := h.publish(group, env)
	awaitValue(t, started, 10*time.Second, "A's handler to start")
	var ranB atomic.Int32
	b := workers.NewGroup(group)
	workers.AddTool(b, workers.Tool{Name: "finish"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			ranB.Add(1)
			return workers.TextResult("B ran it"), nil
		})
	h.run(b, workers.Options{Instance: "b"})
	if err := stopA(); err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	if got, want := h.text(h.await(k, 10*time.Second)), "A finished after "+workers.ErrDraining.Error(); got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	if info := h.waitAcked(group, 0, ack.Sequence); info.Delivered.Consumer != 1 {
		t.Errorf("%d deliveries, want A's alone", info.Delivered.Consumer)
	}
	if n := ranB.Load(); n != 0 {
		t.Errorf("B ran the request %d times after A finished it", n)
	}
}

// TestDrainHandsBackUnstarted: when a replica drains, an envelope it
// pulled but has not started goes back to the stream at once, and another
// replica runs it while the first one's running handler, which ends before
// the drain deadline, is answered and acknowledged as usual.
func TestDrainHandsBackUnstarted(t *testing.T) {
	h := newHarnessWith(t, slowTopology)
	pa := newProbe()
	_, stopA := h.run(testGroup("du", pa), workers.Options{Instance: "a", Concurrency: 1, DrainTimeout: 20 * time.Second})
	running, waiting := h.keyFor(0), h.keyFor(0)
	h.publish("du", h.envelope(running, "block", map[string]any{}))
	if got := awaitValue(t, pa.started, 10*time.Second, "A's handler to start"); got != running {
		t.Fatalf("A started %s, want %s", got, running)
	}
	ack := h.publish("du", h.envelope(waiting, "whoami", map[string]any{}))
	testkit.Eventually(t, "A to hold both envelopes", 10*time.Second, func() bool {
		return h.consumerInfo("du", 0).NumAckPending == 2
	})
	pb := newProbe()
	close(pb.release)
	h.run(testGroup("du", pb), workers.Options{Instance: "b"})

	stopped := make(chan error, 1)
	go func() { stopped <- stopA() }()
	res := h.result(h.await(waiting, 10*time.Second))
	var got callOut
	if err := json.Unmarshal(res.StructuredContent, &got); err != nil {
		t.Fatalf("structuredContent %s: %v", res.StructuredContent, err)
	}
	if got.Key != waiting || got.Attempt != 2 || got.CtxErr != "" {
		t.Errorf("the waiting envelope ran as %+v, want attempt 2 with a live context", got)
	}
	select {
	case err := <-stopped:
		t.Fatalf("A's Run returned (%v) while its handler ran, before the drain deadline", err)
	default:
	}

	close(pa.release)
	if got := h.text(h.await(running, 10*time.Second)); got != "released ctxErr=<nil>" {
		t.Errorf("the running envelope answered %q, want its handler's result", got)
	}
	if err := awaitValue(t, stopped, 10*time.Second, "A's Run to return"); err != nil {
		t.Errorf("A's Run: %v", err)
	}
	if info := h.waitAcked("du", 0, ack.Sequence); info.Delivered.Consumer != 3 {
		t.Errorf("%d deliveries, want 3: each envelope to A, the waiting one again to B", info.Delivered.Consumer)
	}
}

// TestDrainDeadlineIgnoredByHandler: a handler that ignores its context
// does not hold Run past the drain deadline for long.
func TestDrainDeadlineIgnoredByHandler(t *testing.T) {
	h := newHarnessWith(t, slowTopology)
	const drain = 200 * time.Millisecond
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	g := workers.NewGroup("dz")
	workers.AddTool(g, workers.Tool{Name: "stubborn"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			started <- struct{}{}
			<-release
			return workers.TextResult("too late"), nil
		})
	_, stop := h.run(g, workers.Options{DrainTimeout: drain})
	h.call("dz", "stubborn", map[string]any{})
	awaitValue(t, started, 10*time.Second, "the handler to start")
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > drain+5*time.Second {
		t.Errorf("Run returned %v after its context ended, want about DrainTimeout %v and a second", took, drain)
	}
}

// TestHandBackOnLastDelivery: an envelope handed back on its last delivery
// (Topology.MaxDeliver, here 2), which the server would deliver no more,
// is published again, and a replica that comes later runs it (the new
// message's first delivery). Two replicas draining in turn hand it back:
// A on its first delivery, then B on its second, each busy with a call
// of its own. A takes partition 0 only and B every partition, so that
// B's own call (partition 1) cannot go to A.
func TestHandBackOnLastDelivery(t *testing.T) {
	topo := slowTopology
	topo.MaxDeliver = 2
	h := newHarnessWith(t, topo)
	pa, pb := newProbe(), newProbe()
	_, stopA := h.run(testGroup("hb", pa), workers.Options{Instance: "a", Concurrency: 1, DrainTimeout: 20 * time.Second,
		Share: workers.PartitionShare{Index: 0, Of: 2}})
	runningA, waiting, runningB := h.keyFor(0), h.keyFor(0), h.keyFor(1)
	h.publish("hb", h.envelope(runningA, "block", map[string]any{}))
	awaitValue(t, pa.started, 10*time.Second, "A's handler to start")
	h.publish("hb", h.envelope(waiting, "whoami", map[string]any{}))
	testkit.Eventually(t, "A to hold both envelopes", 10*time.Second, func() bool {
		return h.consumerInfo("hb", 0).NumAckPending == 2
	})
	republishedB := make(chan struct{}, 1)
	_, stopB := h.run(testGroup("hb", pb), workers.Options{Instance: "b", Concurrency: 1, DrainTimeout: 20 * time.Second,
		Logger: slog.New(testkit.LogSignal{Msg: "envelope on its last delivery published again", Ch: republishedB})})
	h.publish("hb", h.envelope(runningB, "block", map[string]any{}))
	if got := awaitValue(t, pb.started, 10*time.Second, "B's handler to start"); got != runningB {
		t.Fatalf("B started %s, want %s", got, runningB)
	}

	// A drains: it hands the waiting envelope back (its first delivery),
	// and the server delivers it to B, busy, which holds it unstarted.
	stoppedA := make(chan error, 1)
	go func() { stoppedA <- stopA() }()
	testkit.Eventually(t, "B to hold the waiting envelope", 10*time.Second, func() bool {
		info := h.consumerInfo("hb", 0)
		return info.Delivered.Consumer == 3 && info.NumAckPending == 2
	})
	close(pa.release)
	if err := awaitValue(t, stoppedA, 10*time.Second, "A's Run to return"); err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	// B drains: the waiting envelope is on its last delivery, and is
	// published again before B's own call is let finish (released sooner,
	// B's free handler could take it first and run it).
	stoppedB := make(chan error, 1)
	go func() { stoppedB <- stopB() }()
	awaitValue(t, republishedB, 10*time.Second, "B to publish the waiting envelope again")
	close(pb.release)
	if err := awaitValue(t, stoppedB, 10*time.Second, "B's Run to return"); err != nil {
		t.Fatalf("B's Run: %v", err)
	}

	pc := newProbe()
	close(pc.release)
	h.run(testGroup("hb", pc), workers.Options{Instance: "c"})
	res := h.result(h.await(waiting, 10*time.Second))
	var got callOut
	if err := json.Unmarshal(res.StructuredContent, &got); err != nil {
		t.Fatalf("structuredContent %s: %v", res.StructuredContent, err)
	}
	if got.Key != waiting || got.Attempt != 1 || got.CtxErr != "" {
		t.Errorf("the waiting envelope ran as %+v, want the first delivery of its new message, with a live context", got)
	}
}
