package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// gatewayID names the fake gateway the tests play.
const gatewayID = "gw-test"

// testTopology is small and quick to redeliver.
var testTopology = streams.Topology{Partitions: 2, AckWait: time.Second, MaxAckPending: 256}

// harness is an embedded JetStream server (testkit.JetStream), provisioned
// with testTopology,
// plus a "gateway": a plain nats.go connection that publishes envelopes and
// collects replies on its reply subject.
type harness struct {
	t    testing.TB
	emb  *streams.Embedded
	gw   *nats.Conn
	js   jetstream.JetStream
	topo streams.Topology

	c     context.Context
	msgs  chan *nats.Msg
	mu    sync.Mutex
	stash map[string][]*schema.Reply
	seq   atomic.Int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, testTopology)
}

// newHarnessWith provisions topo instead of testTopology.
func newHarnessWith(t testing.TB, topo streams.Topology) *harness {
	t.Helper()
	emb, gw, js := testkit.JetStream(t)
	h := &harness{t: t, emb: emb, gw: gw, js: js, msgs: make(chan *nats.Msg, 1024), stash: map[string][]*schema.Reply{}}
	var cancel context.CancelFunc
	h.c, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	var err error
	if h.topo, err = streams.Ensure(h.ctx(), h.js, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := h.gw.ChanSubscribe(streams.ReplySubject(gatewayID), h.msgs); err != nil {
		t.Fatal(err)
	}
	if err := h.gw.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

// connect opens a connection closed with the test.
func (h *harness) connect() *nats.Conn {
	h.t.Helper()
	nc, err := h.emb.Connect()
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

// ctx bounds every JetStream call of the test.
func (h *harness) ctx() context.Context { return h.c }

var discard = slog.New(slog.DiscardHandler)

// run serves g on a new connection until the returned stop is called (it
// is also called at cleanup, before the connection is closed). It returns
// once the group is ready. stop cancels Run and returns its error.
func (h *harness) run(g *workers.Group, o workers.Options) (*nats.Conn, func() error) {
	h.t.Helper()
	nc := h.connect()
	return nc, h.runOn(nc, g, o)
}

func (h *harness) runOn(nc *nats.Conn, g *workers.Group, o workers.Options) func() error {
	h.t.Helper()
	stop, err := h.tryRun(nc, g, o)
	if err != nil {
		h.t.Fatalf("Run of %s: %v", g.Name(), err)
	}
	return stop
}

// tryRun starts Run and waits until it is ready; it returns Run's error if
// Run returns first.
func (h *harness) tryRun(nc *nats.Conn, g *workers.Group, o workers.Options) (func() error, error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	o.Ready = ready
	if o.Topology == (streams.Topology{}) {
		o.Topology = h.topo
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = g.Run(ctx, nc, o)
	}()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(20 * time.Second):
			return errors.New("Group.Run did not return within 20s of cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		cancel()
		return nil, fmt.Errorf("returned before ready: %v", runErr)
	case <-time.After(15 * time.Second):
		h.t.Cleanup(func() { _ = stop() })
		return nil, errors.New("not ready in 15s")
	}
	h.t.Cleanup(func() {
		if err := stop(); err != nil {
			h.t.Errorf("Run of %s: %v", g.Name(), err)
		}
	})
	return stop, nil
}

// key returns a fresh request key.
func (h *harness) key() string { return fmt.Sprintf("%s-%d", h.t.Name()[4:], h.seq.Add(1)) }

// envelope builds a tools/call envelope for the gateway with a deadline 20s away.
func (h *harness) envelope(key, name string, args any) *schema.Envelope {
	h.t.Helper()
	env := &schema.Envelope{
		Key:      key,
		Method:   schema.MethodToolsCall,
		Name:     name,
		Deadline: time.Now().Add(20 * time.Second).UnixNano(),
		ReplyTo:  streams.ReplySubject(gatewayID),
		Session:  "sess-1",
	}
	if args != nil {
		j, err := json.Marshal(args)
		if err != nil {
			h.t.Fatal(err)
		}
		if env.Params, err = schema.JSONToMsgpack(nil, j); err != nil {
			h.t.Fatal(err)
		}
	}
	return env
}

// partition is where the gateway routes key.
func (h *harness) partition(key string) int { return streams.Partition(key, h.topo.Partitions) }

// publish sends env to group's partition for env.Key, as the gateway does.
func (h *harness) publish(group string, env *schema.Envelope) *jetstream.PubAck {
	h.t.Helper()
	b, err := env.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	return h.publishRaw(group, env.Key, b)
}

func (h *harness) publishRaw(group, key string, data []byte) *jetstream.PubAck {
	h.t.Helper()
	m := nats.NewMsg(streams.RequestSubject(group, h.partition(key)))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, key)
	ack, err := h.js.PublishMsg(h.ctx(), m)
	if err != nil {
		h.t.Fatalf("publishing %s: %v", key, err)
	}
	if ack.Duplicate {
		h.t.Fatalf("publishing %s: duplicate", key)
	}
	return ack
}

// call publishes a tools/call and returns its key.
func (h *harness) call(group, name string, args any) string {
	h.t.Helper()
	k := h.key()
	h.publish(group, h.envelope(k, name, args))
	return k
}

// await returns the reply for key, failing after timeout.
func (h *harness) await(key string, timeout time.Duration) *schema.Reply {
	h.t.Helper()
	if r := h.take(key); r != nil {
		return r
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m := <-h.msgs:
			r, err := schema.UnmarshalReply(m.Data)
			if err != nil {
				h.t.Fatalf("undecodable reply %x: %v", m.Data, err)
			}
			if r.Key == key {
				return r
			}
			h.mu.Lock()
			h.stash[r.Key] = append(h.stash[r.Key], r)
			h.mu.Unlock()
		case <-timer.C:
			h.t.Fatalf("no reply for %s within %v", key, timeout)
			return nil
		}
	}
}

func (h *harness) take(key string) *schema.Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.stash[key]
	if len(rs) == 0 {
		return nil
	}
	h.stash[key] = rs[1:]
	return rs[0]
}

// drainReplies collects every reply received so far, without waiting, and
// returns how many are unclaimed per key.
func (h *harness) drainReplies() map[string]int {
	h.t.Helper()
	for {
		select {
		case m := <-h.msgs:
			r, err := schema.UnmarshalReply(m.Data)
			if err != nil {
				h.t.Fatalf("undecodable reply: %v", err)
			}
			h.mu.Lock()
			h.stash[r.Key] = append(h.stash[r.Key], r)
			h.mu.Unlock()
		default:
			h.mu.Lock()
			defer h.mu.Unlock()
			out := map[string]int{}
			for k, rs := range h.stash {
				out[k] = len(rs)
			}
			return out
		}
	}
}

// toolResult is a tools/call result as JSON.
type toolResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

// result decodes a successful reply's result.
func (h *harness) result(r *schema.Reply) toolResult {
	h.t.Helper()
	if r.Error != nil {
		h.t.Fatalf("reply %s: protocol error %v, want a result", r.Key, r.Error)
	}
	if r.Kind != schema.ReplyResult {
		h.t.Fatalf("reply %s: kind %d, want result", r.Key, r.Kind)
	}
	j, err := schema.MsgpackToJSON(nil, r.Result)
	if err != nil {
		h.t.Fatalf("reply %s: result: %v", r.Key, err)
	}
	var res toolResult
	if err := json.Unmarshal(j, &res); err != nil {
		h.t.Fatalf("reply %s: result %s: %v", r.Key, j, err)
	}
	return res
}

// text returns the first text content of a reply's result.
func (h *harness) text(r *schema.Reply) string {
	h.t.Helper()
	res := h.result(r)
	if len(res.Content) == 0 {
		h.t.Fatalf("reply %s: no content", r.Key)
	}
	return res.Content[0].Text
}

// consumerInfo returns group's consumer on partition p.
func (h *harness) consumerInfo(group string, p int) *jetstream.ConsumerInfo {
	h.t.Helper()
	c, err := h.js.Consumer(h.ctx(), streams.StreamName(p), streams.ConsumerName(group))
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(h.ctx())
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// waitAcked polls (no event exists for it) until group's consumer on p has
// acknowledged or terminated everything up to stream sequence seq.
func (h *harness) waitAcked(group string, p int, seq uint64) *jetstream.ConsumerInfo {
	h.t.Helper()
	var info *jetstream.ConsumerInfo
	testkit.Eventually(h.t, fmt.Sprintf("consumer %s/%d to acknowledge everything up to stream sequence %d", group, p, seq),
		10*time.Second, func() bool {
			info = h.consumerInfo(group, p)
			return info.NumAckPending == 0 && info.AckFloor.Stream >= seq
		})
	return info
}

// maxTracker records how many handlers run at once.
type maxTracker struct{ cur, max atomic.Int64 }

func (m *maxTracker) enter() {
	n := m.cur.Add(1)
	for {
		old := m.max.Load()
		if n <= old || m.max.CompareAndSwap(old, n) {
			return
		}
	}
}

func (m *maxTracker) leave() { m.cur.Add(-1) }
