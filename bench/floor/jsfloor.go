package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/bench"
	"github.com/mcpstream/mcpstream/streams"
)

// jsResult is what one JetStream round-trip run measured.
type jsResult struct {
	Calls   int64         `json:"calls"`
	Window  time.Duration `json:"-"`
	CPU     time.Duration `json:"-"`
	PerCall time.Duration `json:"-"`
}

// Throughput is calls a second.
func (r jsResult) Throughput() float64 { return float64(r.Calls) / r.Window.Seconds() }

// The sizes of an echo call's envelope and reply on the wire (msgpack,
// measured on mcpstream's: `{"text":"hello"}` from a session).
const (
	envelopeSize = 230
	replySize    = 90
)

// jsRoundTrips runs the message pattern of a call, with none of the
// gateway's or workers' logic, in this process against an embedded
// nats-server with JetStream on disk in dir, laid out as `mcpstream dev`
// lays it (its default topology: 4 request streams, file storage, one
// replica, a durable pull consumer a partition), over in-process
// connections as dev's: sessions goroutines each, one at a time, publish a
// request of envelopeSize bytes with a Nats-Msg-Id and a reply subject for
// the stream's acknowledgement (stored acknowledgement), and wait for the
// answer; a worker connection consumes each partition (Consume, explicit
// ack), replies replySize bytes on core NATS to the subject the request
// names in a header, and acks. Every acknowledgement is read, as the
// gateway's router reads them. It measures the process's CPU over window
// after warmup.
func jsRoundTrips(ctx context.Context, dir string, sessions int, warmup, window time.Duration) (jsResult, error) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		return jsResult{}, err
	}
	defer emb.Shutdown()
	admin, err := emb.Connect()
	if err != nil {
		return jsResult{}, err
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		return jsResult{}, fmt.Errorf("opening JetStream: %w", err)
	}
	topo := streams.Topology{}.WithDefaults()
	if err := streams.Provision(ctx, js, topo); err != nil {
		return jsResult{}, err
	}
	cons, err := streams.EnsureGroup(ctx, js, topo, "floor")
	if err != nil {
		return jsResult{}, err
	}

	// The worker: its own connection, a Consume a partition.
	wc, err := emb.Connect(nats.Name("floor-worker"))
	if err != nil {
		return jsResult{}, err
	}
	defer wc.Close()
	wjs, err := jetstream.New(wc)
	if err != nil {
		return jsResult{}, err
	}
	reply := make([]byte, replySize)
	for p, c := range cons {
		c, err := wjs.Consumer(ctx, streams.StreamName(p), c.CachedInfo().Name)
		if err != nil {
			return jsResult{}, err
		}
		cc, err := c.Consume(func(m jetstream.Msg) {
			_ = wc.Publish(m.Headers().Get("Floor-Reply"), reply)
			_ = m.Ack()
		}, jetstream.PullMaxMessages(max(4, 2*64/topo.Partitions)))
		if err != nil {
			return jsResult{}, fmt.Errorf("consuming partition %d: %w", p, err)
		}
		defer cc.Stop()
	}

	// The gateway: its own connection, one subscription for the replies
	// and one for the acknowledgements, routed to the waiting session by
	// the subject's last token.
	gc, err := emb.Connect(nats.Name("floor-gateway"))
	if err != nil {
		return jsResult{}, err
	}
	defer gc.Close()
	waiting := make([]chan struct{}, sessions)
	for i := range waiting {
		waiting[i] = make(chan struct{}, 1)
	}
	var acked, refused atomic.Int64
	route := func(m *nats.Msg) {
		i, err := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
		if err == nil && i < sessions {
			waiting[i] <- struct{}{}
		}
	}
	if _, err := gc.Subscribe("floor.reply.*", route); err != nil {
		return jsResult{}, err
	}
	if _, err := gc.Subscribe("floor.ack.*", func(m *nats.Msg) {
		if _, err := jetstreamAck(m.Data); err != nil {
			refused.Add(1)
		}
		acked.Add(1)
	}); err != nil {
		return jsResult{}, err
	}

	var calls atomic.Int64
	var counting atomic.Bool
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	body := make([]byte, envelopeSize)
	for i := range sessions {
		wg.Go(func() {
			idx := strconv.Itoa(i)
			for n := 0; runCtx.Err() == nil; n++ {
				key := "floor-" + idx + "-" + strconv.Itoa(n)
				m := nats.NewMsg(streams.RequestSubject("floor", streams.Partition(key, topo.Partitions)))
				m.Data = body
				m.Reply = "floor.ack." + idx
				m.Header.Set(jetstream.MsgIDHeader, key)
				m.Header.Set("Floor-Reply", "floor.reply."+idx)
				if err := gc.PublishMsg(m); err != nil {
					return
				}
				select {
				case <-waiting[i]:
					if counting.Load() {
						calls.Add(1)
					}
				case <-time.After(30 * time.Second):
					return
				case <-runCtx.Done():
					return
				}
			}
		})
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		return jsResult{}, ctx.Err()
	}
	self := os.Getpid()
	cpu0, t0 := bench.PIDCPU(self), time.Now()
	counting.Store(true)
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return jsResult{}, ctx.Err()
	}
	counting.Store(false)
	res := jsResult{Calls: calls.Load(), Window: time.Since(t0), CPU: bench.PIDCPU(self) - cpu0}
	cancel()
	wg.Wait()
	if n := refused.Load(); n > 0 {
		return res, fmt.Errorf("%d of %d publishes refused by the stream", n, acked.Load())
	}
	if res.Calls > 0 {
		res.PerCall = res.CPU / time.Duration(res.Calls)
	}
	return res, nil
}

// jetstreamAck reads a stream's acknowledgement: an error for a refusal.
func jetstreamAck(data []byte) (bool, error) {
	if bytes.Contains(data, []byte(`"error"`)) {
		return false, fmt.Errorf("refused: %s", data)
	}
	return true, nil
}
