package workers_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// watchRecords subscribes the gateway's connection, on core NATS, to every
// record subject of group. A worker publishes a request's record before
// it acknowledges the request on the same connection, so once the
// consumer's acknowledgement shows (h.waitAcked, whose answer comes on the
// gateway's connection too) a record of that request would be pending
// here.
func (h *harness) watchRecords(group string) *nats.Subscription {
	h.t.Helper()
	one := streams.RecordSubject(group, "x")
	sub, err := h.gw.SubscribeSync(strings.TrimSuffix(one, "x") + "*")
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.gw.Flush(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// recordsSeen returns the subjects of the records sub has received.
func recordsSeen(t *testing.T, sub *nats.Subscription) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for {
		m, err := sub.NextMsg(0)
		if errors.Is(err, nats.ErrTimeout) {
			return seen
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Subject] = true
	}
}

// awaitRecord returns the record of key in group's record stream, polling
// until the stream has stored it (the worker does not wait for that).
func (h *harness) awaitRecord(group, key string) *schema.Reply {
	h.t.Helper()
	var rep *schema.Reply
	var err error
	testkit.Eventually(h.t, "the record of "+key, 10*time.Second, func() bool {
		rep, _, err = streams.LookupRecord(h.ctx(), h.js, group, key)
		return !errors.Is(err, streams.ErrNotRecorded)
	})
	if err != nil {
		h.t.Fatalf("record of %s: %v", key, err)
	}
	return rep
}

// TestRecordResults: with RecordResults, Run creates the group's record
// stream with the options' limits, and every run's answer is recorded as
// sent, with the handler's run time: a result, a handler's error, a
// protocol error and a panic's internal error. A redelivery answered from
// the result bucket and an envelope dropped as expired are not recorded.
func TestRecordResults(t *testing.T) {
	h := newHarness(t)
	const group = "rec"
	if _, _, err := streams.LookupRecord(h.ctx(), h.js, group, "none"); !errors.Is(err, streams.ErrNoRecordStream) {
		t.Fatalf("before Run: %v, want no record stream", err)
	}
	sub := h.watchRecords(group)
	// A redelivery, answered from the result bucket.
	cached := h.keyFor(1)
	h.storedReply(cached, "from the store")
	cachedAck := h.publish(group, h.envelope(cached, "count", map[string]any{}))
	h.takeWithoutAck(group, 1, cached)

	h.run(testGroup(group, newProbe()), workers.Options{RecordResults: true, RecordMaxAge: 30 * time.Minute, RecordMaxBytes: 1 << 20})
	s, err := h.js.Stream(h.ctx(), streams.RecordStream(group))
	if err != nil {
		t.Fatalf("record stream after Run: %v", err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != 30*time.Minute || c.MaxBytes != 1<<20 || c.MaxMsgsPerSubject != 1 {
		t.Errorf("record stream: MaxAge %s, MaxBytes %d, per subject %d; want 30m, 1 MiB, 1", c.MaxAge, c.MaxBytes, c.MaxMsgsPerSubject)
	}

	for _, c := range []struct {
		tool string
		code int // 0: a result
	}{{"echo", 0}, {"fail", 0}, {"perr", schema.CodeResourceNotFound}, {"panic", schema.CodeInternalError}} {
		var args any = map[string]any{}
		if c.tool == "echo" {
			args = map[string]any{"text": "recorded echo"}
		}
		k := h.call(group, c.tool, args)
		sent := h.await(k, 10*time.Second)
		rec := h.awaitRecord(group, k)
		if rec.Key != k || rec.RunNs <= 0 || rec.Cached {
			t.Errorf("%s: record key %q, run %d ns, cached %v", c.tool, rec.Key, rec.RunNs, rec.Cached)
		}
		if c.code == 0 && (rec.Error != nil || !bytes.Equal(rec.Result, sent.Result)) {
			t.Errorf("%s: recorded %x, error %v; sent %x", c.tool, rec.Result, rec.Error, sent.Result)
		}
		if c.code != 0 && (rec.Error == nil || rec.Error.Code != c.code || sent.Error == nil || rec.Error.Message != sent.Error.Message || rec.Result != nil) {
			t.Errorf("%s: recorded error %v, result %x; sent %v, want code %d", c.tool, rec.Error, rec.Result, sent.Error, c.code)
		}
		switch c.tool {
		case "echo":
			if got := h.text(rec); got != "recorded echo" {
				t.Errorf("echo recorded %q", got)
			}
		case "fail": // a tool's error is a result marked isError
			if res := h.result(rec); !res.IsError || res.Content[0].Text != "it failed" {
				t.Errorf("fail recorded %+v", res)
			}
		}
	}

	if r := h.await(cached, 15*time.Second); !r.Cached {
		t.Fatalf("redelivery of %s answered Cached false", cached)
	}
	expired := h.keyFor(0)
	env := h.envelope(expired, "echo", map[string]any{"text": "late"})
	env.Deadline = time.Now().Add(-time.Second).UnixNano()
	ack := h.publish(group, env)
	h.waitAcked(group, 0, ack.Sequence)
	h.waitAcked(group, 1, cachedAck.Sequence)
	seen := recordsSeen(t, sub)
	for _, k := range []string{cached, expired} {
		if seen[streams.RecordSubject(group, k)] {
			t.Errorf("%s recorded", k)
		}
		if _, _, err := streams.LookupRecord(h.ctx(), h.js, group, k); !errors.Is(err, streams.ErrNotRecorded) {
			t.Errorf("record of %s: %v, want ErrNotRecorded", k, err)
		}
	}
	if len(seen) != 4 {
		t.Errorf("records published: %v, want the 4 runs'", seen)
	}
}

// TestNoRecordsByDefault: without RecordResults nothing is published to
// the record subjects and no record stream is made.
func TestNoRecordsByDefault(t *testing.T) {
	h := newHarness(t)
	const group = "norec"
	sub := h.watchRecords(group)
	h.run(testGroup(group, newProbe()), workers.Options{})
	k := h.keyFor(0)
	ack := h.publish(group, h.envelope(k, "echo", map[string]any{"text": "not recorded"}))
	if got := h.text(h.await(k, 10*time.Second)); got != "not recorded" {
		t.Fatalf("echo answered %q", got)
	}
	h.waitAcked(group, 0, ack.Sequence)
	if seen := recordsSeen(t, sub); len(seen) != 0 {
		t.Errorf("records published without RecordResults: %v", seen)
	}
	if _, _, err := streams.LookupRecord(h.ctx(), h.js, group, k); !errors.Is(err, streams.ErrNoRecordStream) {
		t.Errorf("lookup: %v, want no record stream", err)
	}
}

// TestRecordStreamRefused: Run fails, naming the record stream, when the
// stream cannot be made as configured (here one on another storage
// exists, which an update cannot change).
func TestRecordStreamRefused(t *testing.T) {
	h := newHarness(t)
	const group = "badrec"
	cfg := h.topo.RecordConfig(group, 0, 0)
	cfg.Storage = jetstream.MemoryStorage
	if _, err := h.js.CreateStream(h.ctx(), cfg); err != nil {
		t.Fatal(err)
	}
	_, err := h.tryRun(h.connect(), testGroup(group, newProbe()), workers.Options{RecordResults: true})
	if err == nil || !strings.Contains(err.Error(), streams.RecordStream(group)) {
		t.Fatalf("Run with a record stream it cannot update: %v", err)
	}
}
