package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

type textIn struct {
	Text string `json:"text"`
}

type callOut struct {
	Key       string `json:"key"`
	Session   string `json:"session"`
	Principal string `json:"principal"`
	Revision  string `json:"revision"`
	Attempt   int    `json:"attempt"`
	Deadline  int64  `json:"deadline"`
	CtxErr    string `json:"ctxErr"`
	CtxDL     int64  `json:"ctxDeadline"`
}

// probe observes a test group's handlers.
type probe struct {
	runs    atomic.Int64  // runs of "count"
	started chan string   // keys of "block" calls, as they start
	release chan struct{} // closed to let "block" calls return
	pool    maxTracker
}

func newProbe() *probe {
	return &probe{started: make(chan string, 64), release: make(chan struct{})}
}

// testGroup is a group with one tool per behaviour under test.
func testGroup(name string, p *probe) *workers.Group {
	g := workers.NewGroup(name)
	workers.AddTool(g, workers.Tool{Name: "echo", Description: "echoes"},
		func(_ context.Context, _ *workers.Call, in textIn) (*schema.ToolResult, error) {
			return workers.TextResult(in.Text), nil
		})
	workers.AddTool(g, workers.Tool{Name: "fail"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			return nil, errors.New("it failed")
		})
	workers.AddTool(g, workers.Tool{Name: "perr"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			return nil, &schema.Error{Code: schema.CodeResourceNotFound, Message: "no such thing"}
		})
	workers.AddTool(g, workers.Tool{Name: "panic"},
		func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
			panic("kaboom")
		})
	workers.AddTool(g, workers.Tool{Name: "count"},
		func(_ context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			p.runs.Add(1)
			return workers.TextResult(fmt.Sprintf("counted attempt %d", c.Attempt)), nil
		})
	workers.AddTool(g, workers.Tool{Name: "block"},
		func(ctx context.Context, c *workers.Call, _ struct{}) (*schema.ToolResult, error) {
			p.pool.enter()
			defer p.pool.leave()
			p.started <- c.Key
			select {
			case <-p.release:
				return workers.TextResult(fmt.Sprintf("released ctxErr=%v", ctx.Err())), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	workers.AddTool(g, workers.Tool{Name: "whoami"},
		func(ctx context.Context, c *workers.Call, _ struct{}) (callOut, error) {
			out := callOut{Key: c.Key, Session: c.Session, Principal: c.Principal, Revision: c.Revision,
				Attempt: c.Attempt}
			if !c.Deadline.IsZero() {
				out.Deadline = c.Deadline.UnixNano()
			}
			if err := ctx.Err(); err != nil {
				out.CtxErr = err.Error()
			}
			if dl, ok := ctx.Deadline(); ok {
				out.CtxDL = dl.UnixNano()
			}
			return out, nil
		})
	return g
}

// keyFor returns a fresh key the gateway routes to partition p.
func (h *harness) keyFor(p int) string {
	for {
		if k := h.key(); h.partition(k) == p {
			return k
		}
	}
}

func TestDemoGroup(t *testing.T) {
	h := newHarness(t)
	g := examples.Demo()
	h.run(g, workers.Options{})

	k := h.call("demo", "echo", map[string]any{"text": "hello, wörld"})
	r := h.await(k, 10*time.Second)
	if r.Cached || r.Key != k {
		t.Errorf("echo reply key %q cached %v", r.Key, r.Cached)
	}
	res := h.result(r)
	if res.IsError || len(res.Content) != 1 || res.Content[0].Type != "text" || res.Content[0].Text != "hello, wörld" {
		t.Errorf("echo result = %+v", res)
	}
	if res.StructuredContent != nil {
		t.Errorf("echo has structuredContent %s", res.StructuredContent)
	}

	k = h.keyFor(1)
	ack := h.publish("demo", h.envelope(k, "add", map[string]any{"a": 2, "b": 3.5}))
	r = h.await(k, 10*time.Second)
	res = h.result(r)
	if res.IsError || string(res.StructuredContent) != `{"sum":5.5}` || len(res.Content) != 1 || res.Content[0].Text != `{"sum":5.5}` {
		t.Errorf("add result = %+v (structured %s)", res, res.StructuredContent)
	}

	// The demo tools are read-only and idempotent: they are run again on
	// redelivery, so their results are not written to the result store.
	h.waitAcked("demo", 1, ack.Sequence)
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(h.ctx(), k); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("result of idempotent tool add stored (or lookup failed): %v", err)
	}

	// Arguments failing the input schema: a tool result with isError set,
	// not a protocol error.
	for _, args := range []any{map[string]any{"text": 5}, map[string]any{}, map[string]any{"text": "x", "more": 1}, nil} {
		k := h.call("demo", "echo", args)
		r := h.await(k, 10*time.Second)
		res := h.result(r)
		if !res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].Text, "invalid arguments") {
			t.Errorf("echo %v: result %+v, want isError with 'invalid arguments'", args, res)
		}
	}
	k = h.call("demo", "sleep", map[string]any{"ms": 10})
	if got := h.text(h.await(k, 10*time.Second)); got != "slept 10 ms" {
		t.Errorf("sleep 10 = %q", got)
	}
	k = h.call("demo", "sleep", map[string]any{"ms": -1})
	if res := h.result(h.await(k, 10*time.Second)); !res.IsError || !strings.Contains(res.Content[0].Text, "between") {
		t.Errorf("sleep -1 = %+v, want an isError result", res)
	}
	k = h.call("demo", "add", map[string]any{"a": "two", "b": 1})
	if res := h.result(h.await(k, 10*time.Second)); !res.IsError {
		t.Errorf("add with a string addend: %+v, want isError", res)
	}
}

func TestResultStoredBeforeAck(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("store", p), workers.Options{})
	for _, k := range []string{h.keyFor(0), h.keyFor(1), "key with spaces/and.dots " + h.key()} {
		ack := h.publish("store", h.envelope(k, "count", map[string]any{}))
		r := h.await(k, 10*time.Second)
		if got := h.text(r); got != "counted attempt 1" || r.Cached {
			t.Errorf("%s: %q cached %v", k, got, r.Cached)
		}
		// Acknowledged only once the result is stored: once the ack is
		// seen, the result is in the bucket.
		h.waitAcked("store", h.partition(k), ack.Sequence)
		stored := h.storedResult(k)
		if stored == nil {
			t.Fatalf("result of %s not in %s once acknowledged", k, streams.ResultBucket)
		}
		if stored.Key != k || string(stored.Result) != string(r.Result) || stored.Cached {
			t.Errorf("stored reply %+v differs from the sent one %+v", stored, r)
		}
	}
	if n := p.runs.Load(); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// storedResult finds the reply stored for request key k, under whatever
// bucket key the worker chose.
func (h *harness) storedResult(k string) *schema.Reply {
	h.t.Helper()
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	keys, err := kv.Keys(h.ctx())
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	for _, bk := range keys {
		e, err := kv.Get(h.ctx(), bk)
		if err != nil {
			continue
		}
		if rep, err := schema.UnmarshalReply(e.Value()); err == nil && rep.Key == k {
			return rep
		}
	}
	return nil
}

func TestErrorReplies(t *testing.T) {
	h := newHarness(t)
	h.run(testGroup("tg", newProbe()), workers.Options{})

	k := h.call("tg", "fail", map[string]any{})
	res := h.result(h.await(k, 10*time.Second))
	if !res.IsError || len(res.Content) != 1 || res.Content[0].Text != "it failed" {
		t.Errorf("handler error: result %+v, want isError 'it failed'", res)
	}

	checkErr := func(key string, code int, msg string) {
		t.Helper()
		r := h.await(key, 10*time.Second)
		if r.Error == nil {
			t.Errorf("%s: no error, result %x", key, r.Result)
			return
		}
		if r.Error.Code != code || !strings.Contains(r.Error.Message, msg) {
			t.Errorf("%s: error %d %q, want %d containing %q", key, r.Error.Code, r.Error.Message, code, msg)
		}
		if len(r.Result) != 0 {
			t.Errorf("%s: error reply also carries a result %x", key, r.Result)
		}
	}
	checkErr(h.call("tg", "perr", nil), schema.CodeResourceNotFound, "no such thing")
	checkErr(h.call("tg", "nope", nil), schema.CodeInvalidParams, "nope")

	k = h.key()
	env := h.envelope(k, "", nil)
	env.Method = "bogus/method"
	h.publish("tg", env)
	checkErr(k, schema.CodeMethodNotFound, "bogus/method")

	// Params without a JSON form (msgpack bin 8) are invalid params.
	k = h.key()
	env = h.envelope(k, "echo", nil)
	env.Params = []byte{0xc4, 0x01, 0x00}
	h.publish("tg", env)
	checkErr(k, schema.CodeInvalidParams, "invalid arguments")
}

func TestCallMetadata(t *testing.T) {
	h := newHarness(t)
	h.run(testGroup("meta", newProbe()), workers.Options{})
	k := h.key()
	env := h.envelope(k, "whoami", map[string]any{})
	env.Principal, env.Revision, env.Session = "alice", "2025-06-18", "s-42"
	h.publish("meta", env)
	res := h.result(h.await(k, 10*time.Second))
	var got callOut
	if err := json.Unmarshal(res.StructuredContent, &got); err != nil {
		t.Fatalf("structuredContent %s: %v", res.StructuredContent, err)
	}
	want := callOut{Key: k, Session: "s-42", Principal: "alice", Revision: "2025-06-18", Attempt: 1,
		Deadline: env.Deadline, CtxDL: env.Deadline}
	if got != want {
		t.Errorf("handler saw %+v, want %+v (handler context bounded by the envelope deadline)", got, want)
	}
}

// A gateway that sends no deadline (Deadline 0) means "none": Expired and
// extendAcks treat it so, and the handler should run with a live context.
func TestNoDeadlineRunsWithLiveContext(t *testing.T) {
	h := newHarness(t)
	h.run(testGroup("nodl", newProbe()), workers.Options{})
	k := h.key()
	env := h.envelope(k, "whoami", map[string]any{})
	env.Deadline = 0
	h.publish("nodl", env)
	res := h.result(h.await(k, 10*time.Second))
	var got callOut
	if err := json.Unmarshal(res.StructuredContent, &got); err != nil {
		t.Fatalf("structuredContent %s: %v", res.StructuredContent, err)
	}
	if got.CtxErr != "" || got.CtxDL != 0 || got.Deadline != 0 {
		t.Errorf("handler of an envelope without deadline saw ctxErr %q ctxDeadline %d call.Deadline %d, want a live context without deadline",
			got.CtxErr, got.CtxDL, got.Deadline)
	}
}

func TestPanicIsAnsweredAndDeadLettered(t *testing.T) {
	h := newHarness(t)
	dlq, err := h.gw.SubscribeSync(streams.DLQSubject("pan"))
	if err != nil {
		t.Fatal(err)
	}
	h.run(testGroup("pan", newProbe()), workers.Options{})

	k := h.keyFor(0)
	ack := h.publish("pan", h.envelope(k, "panic", map[string]any{}))
	r := h.await(k, 10*time.Second)
	if r.Error == nil || r.Error.Code != schema.CodeInternalError {
		t.Fatalf("panic reply = %+v, want error %d", r, schema.CodeInternalError)
	}
	if strings.Contains(r.Error.Message, "kaboom") {
		t.Errorf("panic value leaked to the client: %q", r.Error.Message)
	}

	m, err := dlq.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if m.Header.Get("Mcp-Key") != k || !strings.Contains(m.Header.Get("Mcp-Dlq-Reason"), "kaboom") {
		t.Errorf("dead letter headers %v", m.Header)
	}
	// The worker acknowledges the envelope only after the dead-letter
	// stream has acknowledged the copy: read it back from the stream.
	h.waitAcked("pan", 0, ack.Sequence)
	s, err := h.js.Stream(h.ctx(), streams.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(h.ctx(), streams.DLQSubject("pan"))
	if err != nil {
		t.Fatalf("dead letter not in %s: %v", streams.DLQStream, err)
	}
	env, err := schema.UnmarshalEnvelope(raw.Data)
	if err != nil {
		t.Fatalf("dead-lettered envelope: %v", err)
	}
	if env.Key != k || env.Name != "panic" || env.Method != schema.MethodToolsCall || raw.Header.Get("Mcp-Key") != k {
		t.Errorf("dead-lettered envelope %+v headers %v", env, raw.Header)
	}

	// The worker keeps serving, on both partitions.
	for p := 0; p < h.topo.Partitions; p++ {
		k := h.keyFor(p)
		h.publish("pan", h.envelope(k, "echo", map[string]any{"text": "still here"}))
		if got := h.text(h.await(k, 10*time.Second)); got != "still here" {
			t.Errorf("after panic, echo = %q", got)
		}
	}
}

func TestPoisonEnvelopeIsTerminated(t *testing.T) {
	h := newHarness(t)
	dlq, err := h.gw.SubscribeSync(streams.DLQSubject("poi"))
	if err != nil {
		t.Fatal(err)
	}
	h.run(testGroup("poi", newProbe()), workers.Options{})

	garbage := []byte("\xc1 this is not msgpack")
	noReply, err := (&schema.Envelope{Key: "x", Method: schema.MethodToolsCall, Name: "echo"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{garbage, noReply} {
		k := h.keyFor(1)
		ack := h.publishRaw("poi", k, data)
		m, err := dlq.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("poison %d: no dead letter: %v", i, err)
		}
		if string(m.Data) != string(data) || m.Header.Get("Mcp-Dlq-Reason") == "" {
			t.Errorf("poison %d: dead letter %q headers %v", i, m.Data, m.Header)
		}
		h.waitAcked("poi", 1, ack.Sequence)
	}
	s, err := h.js.Stream(h.ctx(), streams.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 2 {
		t.Errorf("%s holds %d messages, want 2", streams.DLQStream, si.State.Msgs)
	}
	first, err := s.GetMsg(h.ctx(), si.State.FirstSeq)
	if err != nil || string(first.Data) != string(garbage) || first.Subject != streams.DLQSubject("poi") {
		t.Errorf("first dead letter %+v, %v", first, err)
	}

	// Later envelopes on the same partition still work.
	k := h.keyFor(1)
	ack := h.publish("poi", h.envelope(k, "echo", map[string]any{"text": "after"}))
	if got := h.text(h.await(k, 10*time.Second)); got != "after" {
		t.Errorf("echo after poison = %q", got)
	}
	// Three envelopes, three deliveries: the poison ones were terminated,
	// not left to redeliver.
	if info := h.waitAcked("poi", 1, ack.Sequence); info.Delivered.Consumer != 3 {
		t.Errorf("%d deliveries of 3 envelopes, want 3", info.Delivered.Consumer)
	}
}

func TestExpiredEnvelopeIsDropped(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("exp", p), workers.Options{})

	k := h.keyFor(0)
	env := h.envelope(k, "count", map[string]any{})
	env.Deadline = time.Now().Add(-time.Second).UnixNano()
	ack := h.publish("exp", env)
	h.waitAcked("exp", 0, ack.Sequence)

	// A reply to the expired envelope would have been published by the
	// worker's connection before its ack; one for a request published after
	// that ack arrives after it. So once this reply is in, no reply for k
	// can still be on its way.
	barrier := h.keyFor(0)
	h.publish("exp", h.envelope(barrier, "echo", map[string]any{"text": "barrier"}))
	if got := h.text(h.await(barrier, 10*time.Second)); got != "barrier" {
		t.Errorf("barrier echo = %q", got)
	}
	if info := h.consumerInfo("exp", 0); info.Delivered.Consumer != 2 {
		t.Errorf("%d deliveries for two envelopes, want 2 (the expired one terminated)", info.Delivered.Consumer)
	}
	if n := h.drainReplies()[k]; n != 0 {
		t.Errorf("expired envelope got %d replies, want none", n)
	}
	if n := p.runs.Load(); n != 0 {
		t.Errorf("handler of an expired envelope ran %d times", n)
	}
	// Dropping is not dead-lettering.
	s, err := h.js.Stream(h.ctx(), streams.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if si, err := s.Info(h.ctx()); err != nil || si.State.Msgs != 0 {
		t.Errorf("expired envelope dead-lettered: %s info %+v, %v", streams.DLQStream, si, err)
	}
}

func TestBoundedPool(t *testing.T) {
	h := newHarnessWith(t, slowTopology)
	p := newProbe()
	h.run(testGroup("pool", p), workers.Options{Concurrency: 2, Batch: 8})

	var keys []string
	for i := 0; i < 6; i++ {
		k := h.keyFor(i % 2)
		keys = append(keys, k)
		h.publish("pool", h.envelope(k, "block", map[string]any{}))
	}
	for i := 0; i < 2; i++ {
		select {
		case <-p.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d handlers started", i)
		}
	}
	// All six reach the worker (they are pulled, unacked)...
	testkit.Eventually(t, "all 6 envelopes delivered to the worker", 10*time.Second, func() bool {
		n := 0
		for q := 0; q < 2; q++ {
			n += h.consumerInfo("pool", q).NumAckPending
		}
		return n == 6
	})
	// ...but no third handler starts while two block.
	select {
	case k := <-p.started:
		t.Fatalf("third handler %s started while 2 of Concurrency 2 run", k)
	case <-time.After(300 * time.Millisecond):
	}
	if cur := p.pool.cur.Load(); cur != 2 {
		t.Errorf("%d handlers running, want 2", cur)
	}
	close(p.release)
	for _, k := range keys {
		if got := h.text(h.await(k, 10*time.Second)); got != "released ctxErr=<nil>" {
			t.Errorf("%s: %q", k, got)
		}
	}
	if m := p.pool.max.Load(); m != 2 {
		t.Errorf("at most %d handlers ran at once, want exactly 2", m)
	}
}

// slowTopology never redelivers within a test, so extendAcks never sends
// an in-progress acknowledgement.
var slowTopology = streams.Topology{Partitions: 2, AckWait: 30 * time.Second, MaxAckPending: 256}

// storedReply puts a reply for key in the result bucket, as a worker that
// crashed after storing but before acknowledging would have.
func (h *harness) storedReply(key, text string) {
	h.t.Helper()
	j, _ := json.Marshal(schema.ToolResult{Content: []schema.Content{{Type: "text", Text: text}}})
	mp, err := schema.JSONToMsgpack(nil, j)
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := (&schema.Reply{Key: key, Result: mp}).Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := kv.Put(h.ctx(), key, b); err != nil {
		h.t.Fatal(err)
	}
}

// takeWithoutAck delivers the next envelope of group on partition p to a
// raw consumer that never acknowledges it (a worker that crashed).
func (h *harness) takeWithoutAck(group string, p int, key string) {
	h.t.Helper()
	cs, err := streams.EnsureGroup(h.ctx(), h.js, h.topo, group)
	if err != nil {
		h.t.Fatal(err)
	}
	batch, err := cs[p].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		env, err := schema.UnmarshalEnvelope(m.Data())
		if err != nil || env.Key != key {
			h.t.Fatalf("raw consumer got %v, %v; want envelope %s", env, err, key)
		}
		n++
	}
	if n != 1 {
		h.t.Fatalf("raw consumer got %d messages, want 1 (err %v)", n, batch.Error())
	}
}

func TestRedeliveryAnsweredFromResultStore(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	k := h.keyFor(1)
	h.storedReply(k, "from the store")
	ack := h.publish("res", h.envelope(k, "count", map[string]any{}))
	h.takeWithoutAck("res", 1, k)

	h.run(testGroup("res", p), workers.Options{})
	r := h.await(k, 15*time.Second)
	if !r.Cached {
		t.Errorf("redelivered envelope answered with Cached false")
	}
	if got := h.text(r); got != "from the store" {
		t.Errorf("redelivered envelope answered %q, want the stored result", got)
	}
	if n := p.runs.Load(); n != 0 {
		t.Errorf("handler ran %d times for an envelope with a stored result", n)
	}
	// Delivered twice (the crashed consumer, then the group), acked.
	info := h.waitAcked("res", 1, ack.Sequence)
	if info.Delivered.Consumer != 2 {
		t.Errorf("%d deliveries, want 2", info.Delivered.Consumer)
	}
	// A first delivery never consults the store.
	k2 := h.keyFor(1)
	h.storedReply(k2, "stale")
	h.publish("res", h.envelope(k2, "count", map[string]any{}))
	r = h.await(k2, 10*time.Second)
	if got := h.text(r); r.Cached || got != "counted attempt 1" {
		t.Errorf("first delivery answered %q cached %v, want a run", got, r.Cached)
	}
}

func TestRedeliveryWithoutResultStoreRunsAgain(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	k := h.keyFor(0)
	h.storedReply(k, "from the store")
	ack := h.publish("nores", h.envelope(k, "count", map[string]any{}))
	h.takeWithoutAck("nores", 0, k)

	h.run(testGroup("nores", p), workers.Options{NoResultStore: true})
	r := h.await(k, 15*time.Second)
	if r.Cached {
		t.Error("reply Cached with NoResultStore")
	}
	if got := h.text(r); got != "counted attempt 2" {
		t.Errorf("redelivered envelope answered %q, want a second run", got)
	}
	if n := p.runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	h.waitAcked("nores", 0, ack.Sequence)
	// NoResultStore does not write the store either.
	kv, err := h.js.KeyValue(h.ctx(), streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	k2 := h.keyFor(0)
	h.publish("nores", h.envelope(k2, "count", map[string]any{}))
	h.await(k2, 10*time.Second)
	if _, err := kv.Get(h.ctx(), k2); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("result stored with NoResultStore: %v", err)
	}
}

func TestLongHandlerIsNotRedelivered(t *testing.T) {
	h := newHarness(t)
	p := newProbe()
	h.run(testGroup("slow", p), workers.Options{})
	k := h.keyFor(0)
	ack := h.publish("slow", h.envelope(k, "block", map[string]any{}))
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not start")
	}
	// Hold it for 2.5 AckWaits: without progress acks it would be
	// redelivered and start again.
	select {
	case again := <-p.started:
		t.Fatalf("envelope %s redelivered while its handler runs", again)
	case <-time.After(5 * h.topo.AckWait / 2):
	}
	if info := h.consumerInfo("slow", 0); info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Errorf("while running: redelivered %d ackPending %d, want 0 and 1", info.NumRedelivered, info.NumAckPending)
	}
	close(p.release)
	if got := h.text(h.await(k, 10*time.Second)); got != "released ctxErr=<nil>" {
		t.Errorf("reply %q", got)
	}
	h.waitAcked("slow", 0, ack.Sequence)
}

func registry(t *testing.T, h *harness) jetstream.KeyValue {
	t.Helper()
	kv, err := h.js.KeyValue(h.ctx(), streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// watchUntilRemoved watches key and returns a channel closed when a delete
// or purge of it is seen, after the initial values.
func watchUntilRemoved(t *testing.T, h *harness, kv jetstream.KeyValue, key string) <-chan jetstream.KeyValueOp {
	t.Helper()
	ctx, cancel := context.WithCancel(h.ctx())
	t.Cleanup(cancel)
	w, err := kv.Watch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	// Initial value(s), then the nil marker.
	sawValue := false
	for e := range w.Updates() {
		if e == nil {
			break
		}
		sawValue = sawValue || e.Operation() == jetstream.KeyValuePut
	}
	if !sawValue {
		t.Fatalf("watcher on %s saw no current value", key)
	}
	out := make(chan jetstream.KeyValueOp, 1)
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				out <- op
				return
			}
		}
	}()
	return out
}
