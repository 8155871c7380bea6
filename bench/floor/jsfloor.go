package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
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
// measured on mcpstream's: `{"text":"hello"}` from a session, read by a
// core subscription to dev's NATS on 2026-12-08: an envelope of 156 bytes
// for a session's first call, a few more as the gateway's request keys
// grow, and a reply of 65; 230 and 90 before that day).
const (
	envelopeSize = 160
	replySize    = 65
)

// pipeline is a call's message pattern with none of the gateway's or
// workers' logic: an embedded nats-server with JetStream on disk, laid
// out as `mcpstream dev` lays it (its default topology: 4 request streams,
// file storage, one replica, a durable pull consumer a partition), over
// in-process connections as dev's; a worker connection that consumes each
// partition (Consume, explicit ack), replies replySize bytes on core NATS
// to the subject the request names in a header, and acks; and the
// gateway's connection, whose publishes carry a Nats-Msg-Id and a reply
// subject for the stream's acknowledgement (stored acknowledgement), every
// acknowledgement read, as the gateway's router reads them.
type pipeline struct {
	emb            *streams.Embedded
	conns          []*nats.Conn
	stops          []func()
	gc             *nats.Conn // the gateway's connection
	wc             *nats.Conn // the worker's connection
	reply          []byte     // every answer's replySize bytes
	topo           streams.Topology
	acked, refused atomic.Int64
}

// startPipeline starts a pipeline with its store in dir; close stops it.
func startPipeline(ctx context.Context, dir string) (_ *pipeline, err error) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		return nil, err
	}
	p := &pipeline{emb: emb, topo: streams.Topology{}.WithDefaults()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	admin, err := p.connect("floor-admin")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(admin)
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	if err := streams.Provision(ctx, js, p.topo); err != nil {
		return nil, err
	}
	cons, err := streams.EnsureGroup(ctx, js, p.topo, "floor")
	if err != nil {
		return nil, err
	}

	// The worker: its own connection, a Consume a partition.
	if p.wc, err = p.connect("floor-worker"); err != nil {
		return nil, err
	}
	wjs, err := jetstream.New(p.wc)
	if err != nil {
		return nil, err
	}
	p.reply = make([]byte, replySize)
	for i, c := range cons {
		c, err := wjs.Consumer(ctx, streams.StreamName(i), c.CachedInfo().Name)
		if err != nil {
			return nil, err
		}
		cc, err := c.Consume(p.work, jetstream.PullMaxMessages(max(4, 2*64/p.topo.Partitions)))
		if err != nil {
			return nil, fmt.Errorf("consuming partition %d: %w", i, err)
		}
		p.stops = append(p.stops, cc.Stop)
	}

	// The gateway: its own connection and a subscription for the
	// acknowledgements.
	if p.gc, err = p.connect("floor-gateway"); err != nil {
		return nil, err
	}
	if _, err := p.gc.Subscribe("floor.ack.*", p.ack); err != nil {
		return nil, err
	}
	return p, nil
}

// work is the worker's callback: it answers m on core NATS, to the
// subject m names, and acks it.
func (p *pipeline) work(m jetstream.Msg) {
	_ = p.wc.Publish(m.Headers().Get("Floor-Reply"), p.reply)
	_ = m.Ack()
}

// ack reads a stream's acknowledgement of a publish, counting refusals.
func (p *pipeline) ack(m *nats.Msg) {
	if _, err := jetstreamAck(m.Data); err != nil {
		p.refused.Add(1)
	}
	p.acked.Add(1)
}

func (p *pipeline) connect(name string) (*nats.Conn, error) {
	nc, err := p.emb.Connect(nats.Name(name))
	if err == nil {
		p.conns = append(p.conns, nc)
	}
	return nc, err
}

// publish sends a request of envelopeSize bytes with message id key,
// answered on replyTo, its stream's acknowledgement to ackTo (under
// floor.ack.).
func (p *pipeline) publish(key, replyTo, ackTo string, body []byte) error {
	m := nats.NewMsg(streams.RequestSubject("floor", streams.Partition(key, p.topo.Partitions)))
	m.Data = body
	m.Reply = ackTo
	m.Header.Set(jetstream.MsgIDHeader, key)
	m.Header.Set("Floor-Reply", replyTo)
	return p.gc.PublishMsg(m)
}

// refusals is an error if the stream refused any publish.
func (p *pipeline) refusals() error {
	if n := p.refused.Load(); n > 0 {
		return fmt.Errorf("%d of %d publishes refused by the stream", n, p.acked.Load())
	}
	return nil
}

func (p *pipeline) close() {
	for _, stop := range p.stops {
		stop()
	}
	for _, nc := range slices.Backward(p.conns) {
		nc.Close()
	}
	p.emb.Shutdown()
}

// jsRoundTrips runs a pipeline in this process (the run-jetstream mode
// of the command) with its store in dir:
// sessions goroutines each, one at a time, publish a request and wait for
// its answer, routed to the waiting goroutine by the reply subject's last
// token; with rate > 0, a call starts only as a pacer allows, rate calls
// a second over all goroutines (released every millisecond; a call the
// goroutines are too busy to start waits). It measures the process's CPU
// over window after warmup.
func jsRoundTrips(ctx context.Context, dir string, sessions int, rate float64, warmup, window time.Duration) (jsResult, error) {
	p, err := startPipeline(ctx, dir)
	if err != nil {
		return jsResult{}, err
	}
	defer p.close()
	waiting := make([]chan struct{}, sessions)
	for i := range waiting {
		waiting[i] = make(chan struct{}, 1)
	}
	route := func(m *nats.Msg) {
		i, err := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
		if err == nil && i < sessions {
			waiting[i] <- struct{}{}
		}
	}
	if _, err := p.gc.Subscribe("floor.reply.*", route); err != nil {
		return jsResult{}, err
	}

	var calls atomic.Int64
	var counting atomic.Bool
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var paced <-chan struct{}
	if rate > 0 {
		tokens := make(chan struct{}, int(rate)+1) // a second's calls at most wait to start
		paced = tokens
		wg.Go(func() { pace(runCtx, rate, tokens) })
	}
	body := make([]byte, envelopeSize)
	for i := range sessions {
		wg.Go(func() {
			idx := strconv.Itoa(i)
			for n := 0; runCtx.Err() == nil; n++ {
				if paced != nil {
					select {
					case <-paced:
					case <-runCtx.Done():
						return
					}
				}
				if err := p.publish("floor-"+idx+"-"+strconv.Itoa(n), "floor.reply."+idx, "floor.ack."+idx, body); err != nil {
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
	if err := p.refusals(); err != nil {
		return res, err
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

// pace releases rate tokens a second on tokens, every millisecond as many
// as are due since it started, until ctx ends; tokens the channel has no
// room for are dropped.
func pace(ctx context.Context, rate float64, tokens chan<- struct{}) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start, released := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for due := int(now.Sub(start).Seconds() * rate); released < due; released++ {
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}
}
