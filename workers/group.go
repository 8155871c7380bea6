package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/internal/logging"
	"github.com/mcpstream/mcpstream/streams"
)

// Group is a named set of tools, prompts and resources served together by
// one worker group. Build it with [NewGroup], [AddTool], [AddPrompt],
// [AddResource] and [AddResourceTemplate], then [Group.Run] it in any
// number of processes: every replica competes for the same durable
// consumers.
type Group struct {
	name      string
	mu        sync.Mutex
	tools     map[string]*toolEntry
	prompts   map[string]*promptEntry
	resources map[string]*resourceEntry
	templates []*templateEntry
	// changed signals running replicas that something was added: they
	// register it at once (a tool added while the group runs is served).
	changed chan struct{}
	// removed holds the registry keys of raw definitions SetRaw removed,
	// until a running replica deletes them.
	removed []string
}

// NewGroup returns an empty group. The name must be 1-64 of [A-Za-z0-9_-]
// ([Group.Run] reports an invalid one).
func NewGroup(name string) *Group {
	return &Group{name: name, tools: map[string]*toolEntry{}, prompts: map[string]*promptEntry{},
		resources: map[string]*resourceEntry{}, changed: make(chan struct{}, 1)}
}

// touch tells running replicas to register g's entries again.
func (g *Group) touch() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Tools returns the names of g's tools, sorted.
func (g *Group) Tools() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.tools))
	for n := range g.tools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *Group) add(t *toolEntry) { register(g, g.tools, "tool", t.def.Name, t) }

// register puts e under key in m, one of g's registrations (kind names it
// in the panic for a key taken already), and announces the change.
func register[E any](g *Group, m map[string]E, kind, key string, e E) {
	defer g.touch()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := m[key]; dup {
		panic(fmt.Sprintf("workers: %s %q added twice to group %q", kind, key, g.name))
	}
	m[key] = e
}

func (g *Group) tool(name string) *toolEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tools[name]
}

// Options configure [Group.Run]. The zero value is usable.
type Options struct {
	// Concurrency bounds handlers running at once in this process
	// (default 64).
	Concurrency int
	// Batch is how many envelopes each partition's pull buffers (default:
	// twice Concurrency spread over the partitions, at least 4). Envelopes
	// buffered here wait for this replica, so a large batch on a replica of
	// low concurrency would hold work that other replicas could run. Each
	// pull also asks for no more than 16 MiB spread over the partitions
	// (room for one envelope as large as the streams take at least:
	// streams.PullBytes), so that a batch of large requests is not more
	// than the NATS server lets wait on the connection, past which it
	// closes it as slow.
	Batch int
	// Heartbeat is the interval of registry heartbeats (default 5s); one
	// that fails is tried again every 250ms.
	Heartbeat time.Duration
	// HeartbeatTTL is how long a heartbeat lives: the gateways count a
	// group dead, and refuse its calls at once, this long after its last
	// replica's last heartbeat (default three intervals, and 20s at least,
	// so that a heartbeat missed while the registry bucket elects a leader,
	// 4-9s after its node dies, does not make a live group look dead).
	// JetStream keeps it in whole seconds, 1s at least.
	HeartbeatTTL time.Duration
	// QueueTarget is the longest wait behind the group's backlog that the
	// gateways let a new call expect before they refuse it at once (503 or
	// the overload error, with when to try again); a tool's own
	// Tool.QueueTarget wins. Zero: the gateways' default (50ms).
	QueueTarget time.Duration
	// LoadInterval is how often this replica tells the gateways its load
	// (schema.LoadReport on streams.LoadSubject): its handlers, their mean
	// run time and, while every handler is busy, the group's backlog read
	// from its consumers (default 100ms; negative: never, and the gateways
	// then admit the group's calls without regard to its backlog).
	LoadInterval time.Duration
	// Instance names this replica in heartbeats (default random).
	Instance string
	// Topology is used when none has been provisioned yet; a recorded
	// topology always wins (see streams.Ensure).
	Topology streams.Topology
	// NoResultStore disables the result bucket: a redelivered envelope then
	// runs its handler again.
	NoResultStore bool
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Ready, when set, is closed once the group is registered and pulling.
	Ready chan<- struct{}
	// StateKey signs the requestState of input-required results (at least
	// 32 bytes). Every replica of every group behind the same gateways
	// must share it; by default it is the deployment's key in the registry
	// bucket (streams.StateKey).
	StateKey []byte
	// Metrics, if set, is where the group's Prometheus metrics go:
	// deliveries by outcome, handler run times, busy handlers, each
	// labelled with the group (see the package documentation). Groups in
	// one process may share a registry: they share the vectors. Nil (the
	// default) exports nothing.
	Metrics prometheus.Registerer
	// TracerProvider, if set, traces every delivery in OpenTelemetry,
	// under the gateway's span whose context the envelope carries (see
	// the package documentation): the queue wait, the delivery, and the
	// handler, whose context carries its span so that a handler's own
	// spans nest under it. Nil (the default) makes no span.
	TracerProvider trace.TracerProvider
	// Propagator reads the trace context and baggage envelopes carry
	// (default W3C trace context and baggage): with TracerProvider set, a
	// handler's context has the request's baggage.
	Propagator propagation.TextMapPropagator
	// DrainTimeout bounds the drain that follows the cancellation of
	// Run's context (default 25s, which fits Kubernetes' default 30s
	// grace period). Handlers still running when it passes are cancelled,
	// with ErrDraining as their context's cause, and their envelopes go
	// back to the stream unanswered, for another replica to run; so Run
	// returns about DrainTimeout after its context ends, not when the
	// slowest envelope's deadline passes (a handler that ignores its
	// context is waited for a second more, then left behind). Negative:
	// no drain window, handlers are cancelled as soon as the context
	// ends; a tiny value has the same effect.
	DrainTimeout time.Duration
	// Share, when its Of is set, makes this replica take only its share
	// of the request partitions: replica Index of Of (0 <= Index < Of)
	// pulls from the partitions p with p mod Of == Index; by default a
	// replica pulls from all of them. The gateways route all requests of
	// a session to one partition, so replicas that split the partitions
	// this way each serve whole sessions, which a server that keeps state
	// per session needs (workers/upstream's session affinity). A share no
	// live replica takes is not served: its requests wait, until their
	// deadline, for a replica with that Index to come back.
	Share PartitionShare
	// RecordResults, when set, records every answer this group's
	// handlers produce, a result or a JSON-RPC error with the handler's
	// run time (the schema.Reply sent to the gateway), in the group's
	// record stream (streams.RecordStream), which Run creates or updates:
	// `mcpstream replay --results` and streams.LookupRecord read it. A
	// record is published without waiting for the stream's
	// acknowledgement, so it adds no wait to a call, and one that fails is
	// logged and lost. Answers from the result bucket, results that came
	// too late or were cancelled, and tasks' outcomes are not recorded.
	// Off by default: nothing is recorded and no stream is made.
	RecordResults bool
	// RecordMaxAge is how long the record stream keeps a record (default
	// the topology's MaxAge, 1h unless provisioned otherwise).
	RecordMaxAge time.Duration
	// RecordMaxBytes bounds the record stream; past it the oldest records
	// are dropped (default 64 MiB, streams.DefaultRecordMaxBytes). The
	// record stream's limits are the last starting replica's.
	RecordMaxBytes int64
}

// DefaultDrainTimeout is Options.DrainTimeout's default.
const DefaultDrainTimeout = 25 * time.Second

// ErrDraining is the cause (context.Cause) with which a handler's context
// is cancelled when its group's drain deadline passes (see
// Options.DrainTimeout). The handler's envelope is handed back to the
// stream, so what the handler returns then is never sent.
var ErrDraining = errors.New("workers: worker draining")

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.LoadInterval == 0 {
		o.LoadInterval = 100 * time.Millisecond
	}
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = max(3*o.Heartbeat, heartbeatTTLFloor)
	}
	if o.Instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.Instance = hex.EncodeToString(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	return o
}

// runner is one running replica of a group.
type runner struct {
	g *Group
	// repeats holds back repeats of a failure that hits every request in
	// flight (a bucket's election): one warning a second of each kind.
	repeats logging.Repeats
	o       Options
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    streams.Topology
	results jetstream.KeyValue // nil when disabled
	// stateKey signs requestState (Options.StateKey or the registry's).
	stateKey []byte
	// tasks is the task bucket.
	tasks jetstream.KeyValue
	log   *slog.Logger
	// work feeds the pool: Concurrency long-lived goroutines, so handler
	// stacks stay grown instead of growing again for every envelope.
	work chan pulled
	pool sync.WaitGroup
	// buffered holds, for each partition's consumer, how long the
	// envelopes its pulls buffer may have waited (see hand).
	buffered []bufferWait
	// slots holds what each pool goroutine's handler runs, for extendAcks.
	slots []slot
	// taskRuns maps the tasks running here to their cancel functions, for
	// tasks/cancel (a request's handler is cancelled through its slot).
	taskRuns taskRuns
	// cancelled remembers the requests cancelled lately, for one whose
	// envelope waits in this replica's buffers as its cancellation comes.
	cancelled cancelled
	// base is the parent of the pool's waits (the result bucket, the task
	// bucket, dead letters). It is cancelled, with ErrDraining, only by
	// abort: at the drain deadline.
	base context.Context
	// handlerRoot is the parent of every slot's context, and so of every
	// handler's: base's values without its end, so that a call's context
	// does not register with one context every pool goroutine shares.
	// abort ends the handlers running by their slots (slot.abort); one
	// starting as it does sees base ended (see process).
	handlerRoot context.Context
	abort       context.CancelCauseFunc
	// draining is closed when Run's context ends: from then on onMsg sets
	// envelopes aside in unstarted, handed back to the stream once the
	// consumers have stopped.
	draining  chan struct{}
	unstarted struct {
		sync.Mutex
		msgs []jetstream.Msg
	}
	metrics *metrics  // nil without Options.Metrics
	load    loadMeter // what the load reports say (load.go)
	tracing *tracing  // nil without Options.TracerProvider
	record  *recorder // nil without Options.RecordResults

	processed, cached, expired, poisoned, handedBack atomic.Int64
}

// Run serves g until ctx is cancelled, then drains and returns nil. The
// drain stops pulling, hands back to the stream (a negative
// acknowledgement) every envelope pulled but not started, and lets running
// handlers finish, their results stored, sent and acknowledged, until
// [Options.DrainTimeout]. Then it cancels the handlers still running, with
// [ErrDraining] as their context's cause, hands their envelopes back
// unanswered for another replica to run, and removes its heartbeat.
//
// Run returns an error, naming the group, when the group cannot be served:
// an invalid name, JetStream unreachable or refusing to provision the
// streams, consumers and buckets, an Options.StateKey shorter than 32
// bytes, metrics that Options.Metrics refuses, or, with
// Options.RecordResults, a record stream that cannot be created or updated.
// The caller owns nc and keeps it open until Run returns.
func (g *Group) Run(ctx context.Context, nc *nats.Conn, o Options) error {
	if err := streams.CheckName("group", g.name); err != nil {
		return err
	}
	o = o.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("group %s: opening JetStream: %w", g.name, err)
	}
	topo, err := streams.Ensure(ctx, js, o.Topology)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	if o.Batch <= 0 {
		o.Batch = max(4, 2*o.Concurrency/topo.Partitions)
	}
	consumers, err := streams.EnsureGroup(ctx, js, topo, g.name)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	if consumers, err = o.Share.take(consumers); err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	m, err := newMetrics(o.Metrics, g.name)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	var rec *recorder
	if o.RecordResults {
		if rec, err = newRecorder(ctx, nc, js, topo, g.name, o); err != nil {
			return fmt.Errorf("group %s: %w", g.name, err)
		}
	}
	r := &runner{
		g: g, o: o, nc: nc, js: js, topo: topo,
		log:      o.Logger.With("group", g.name, "instance", o.Instance),
		work:     make(chan pulled),
		draining: make(chan struct{}),
		metrics:  m,
		tracing:  newTracing(o, g.name),
		record:   rec,
	}
	// Handlers outlive ctx: they are cancelled only at the drain deadline.
	var abortBase context.CancelCauseFunc
	r.base, abortBase = context.WithCancelCause(context.WithoutCancel(ctx))
	r.handlerRoot = context.WithoutCancel(r.base)
	r.slots = make([]slot, o.Concurrency)
	r.abort = func(cause error) {
		abortBase(cause)
		for i := range r.slots {
			r.slots[i].abort(cause)
		}
	}
	defer r.abort(ErrDraining)
	for i := range o.Concurrency {
		r.pool.Add(1)
		go func() {
			defer r.pool.Done()
			for p := range r.work {
				r.process(&r.slots[i], p.msg, p.mayBeCopy)
			}
		}()
	}
	stopExtender := make(chan struct{})
	extenderDone := make(chan struct{})
	go func() { defer close(extenderDone); r.extendAcks(stopExtender) }()
	// On every return, once the consumers have stopped, the pool ends, and
	// with it the in-progress acknowledgements.
	stopPool := sync.OnceFunc(func() {
		close(r.work)
		r.awaitPool()
		close(stopExtender)
		<-extenderDone
	})
	defer stopPool()
	if !o.NoResultStore {
		if r.results, err = js.KeyValue(ctx, streams.ResultBucket); err != nil {
			return fmt.Errorf("group %s: opening bucket %s: %w", g.name, streams.ResultBucket, err)
		}
	}
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		return fmt.Errorf("group %s: opening bucket %s: %w", g.name, streams.RegistryBucket, err)
	}
	if r.tasks, err = streams.TaskBucketOf(ctx, js, topo); err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	if r.stateKey = o.StateKey; len(r.stateKey) == 0 {
		if r.stateKey, err = streams.StateKey(ctx, reg); err != nil {
			return fmt.Errorf("group %s: %w", g.name, err)
		}
	} else if len(r.stateKey) < 32 {
		return fmt.Errorf("group %s: Options.StateKey has %d bytes, want at least 32", g.name, len(r.stateKey))
	}
	r.buffered = make([]bufferWait, len(consumers))
	// Each pull is bounded in bytes too: a batch of large requests
	// would otherwise be more than the server lets wait on the
	// connection, which it then closes as slow.
	pullBytes := streams.PullBytes(min(int64(topo.WithDefaults().MaxMsgSize), nc.MaxPayload()), len(consumers))
	pulls, err := consume(nc, g.name, len(consumers), func(i int, failed func(error)) (jetstream.ConsumeContext, error) {
		return consumers[i].Consume(func(msg jetstream.Msg) { r.onMsg(i, msg) },
			jetstream.PullMaxMessagesWithBytesLimit(o.Batch, pullBytes),
			jetstream.PullExpiry(pullExpiry),
			jetstream.PullHeartbeat(pullHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				failed(err)
				if !errors.Is(err, jetstream.ErrNoHeartbeat) && !errors.Is(err, nats.ErrNoResponders) {
					r.log.Warn("consume", "err", err)
				}
			}))
	}, r.log)
	if err != nil {
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	stopAll := pulls.stop
	if o.LoadInterval > 0 {
		lctx, stopReports := context.WithCancel(ctx)
		reported := make(chan struct{})
		go func() { defer close(reported); r.reportLoad(lctx, consumers) }()
		defer func() { stopReports(); <-reported }()
	}
	cancels, err := nc.Subscribe(streams.CancelSubject, r.onCancel)
	if err != nil {
		stopAll()
		return fmt.Errorf("group %s: subscribing to cancellations: %w", g.name, err)
	}
	defer func() { _ = cancels.Unsubscribe() }()
	hb, err := r.register(ctx, reg)
	if err != nil {
		stopAll()
		return fmt.Errorf("group %s: %w", g.name, err)
	}
	r.log.Info("worker group serving", "tools", g.Tools(), "partitions", topo.Partitions, "concurrency", o.Concurrency)
	if o.Ready != nil {
		close(o.Ready)
	}

	<-ctx.Done()
	// Drain: stop pulling and hand back what has not started; let running
	// handlers finish until the drain deadline, then cancel them.
	r.log.Info("worker group draining", "timeout", o.DrainTimeout, "running", r.held())
	close(r.draining)
	deadline := time.AfterFunc(max(o.DrainTimeout, 0), func() { r.abort(ErrDraining) })
	defer deadline.Stop()
	stopAll()
	r.handBackUnstarted()
	stopPool()
	hb.stop()
	r.log.Info("worker group drained", "processed", r.processed.Load(), "cached", r.cached.Load(),
		"expired", r.expired.Load(), "poisoned", r.poisoned.Load(), "handedBack", r.handedBack.Load())
	return nil
}

// abortGrace is how long Run waits, once the drain deadline has cancelled
// the handlers still running, for them to return. One that ignores its
// context is left behind: its envelope, no longer kept in progress, is
// redelivered after AckWait.
const abortGrace = time.Second

// awaitPool waits, once r.work is closed, for the pool's goroutines to
// end: as long as their handlers run before the drain deadline, and
// abortGrace after it.
func (r *runner) awaitPool() {
	done := make(chan struct{})
	go func() { r.pool.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-r.base.Done():
	}
	t := time.NewTimer(abortGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		r.log.Warn("handlers ignore the drain deadline; returning without them", "running", r.held())
	}
}

// A pull request lives on the consumer's leader. When that node dies, the
// new leader knows nothing of it and the replica would wait out the request
// (30s by default) before pulling again. The server sends a heartbeat on an
// idle pull every pullHeartbeat; two missed ones make Consume pull again,
// from whichever node leads by then (and the new leader's election
// advisory sooner: consume.go).
const (
	pullHeartbeat = 2 * time.Second
	pullExpiry    = 5 * pullHeartbeat
)

// pulled is an envelope on its way from a consumer's callback to the
// pool.
type pulled struct {
	msg jetstream.Msg
	// mayBeCopy is set when the envelope may have waited in this
	// replica's buffers for a quarter AckWait or more: the server may
	// redeliver it to another replica before this one's first in-progress
	// acknowledgement of its handler, so it is claimed before it runs
	// (see claim.go). One that waited less is acknowledged in progress
	// well within AckWait, and runs unclaimed.
	mayBeCopy bool
}

// bufferWait is what a partition's consumer callback knows of how long
// the envelopes buffered behind it have waited. A pull buffers up to
// Options.Batch envelopes, which the server does not hear of until a
// handler takes them; the callback takes them one at a time. While it
// waits for a free handler (blocked), the envelopes buffered behind it
// wait too, from since at the latest, and once a handler is free they
// come one after another, each taken at once. So after a wait ends, the
// next owed envelopes (twice Batch: the pull's buffer, and another pull's
// after a reconnect reset its count) are taken as having waited since
// since, and only then is the buffer known to hold none that waited. The
// callback runs on one goroutine a consumer at a time.
type bufferWait struct {
	since atomic.Int64 // Unix nanoseconds; 0 when no envelope may have waited
	owed  atomic.Int64
}

// waited reports whether an envelope taken now may have waited for d or
// more.
func (b *bufferWait) waited(d time.Duration) bool {
	since := b.since.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= d
}

// block records that the callback waits for a free handler.
func (b *bufferWait) block() {
	if b.since.Load() == 0 {
		b.since.Store(time.Now().UnixNano())
	}
}

// unblocked records that a wait ended: owed envelopes may be buffered
// behind it.
func (b *bufferWait) unblocked(owed int) { b.owed.Store(int64(owed)) }

// taken records that an envelope was taken at once: one fewer may have
// waited; with none left, none behind it did.
func (b *bufferWait) taken() {
	if b.owed.Load() > 0 && b.owed.Add(-1) > 0 {
		return
	}
	b.since.Store(0)
}

// onMsg is the Consume callback of partition p's consumer. It blocks
// while every pool goroutine is busy, which stops the partition's pulls:
// backpressure instead of an unbounded queue; meanwhile it tells the
// server every quarter AckWait that msg is being worked on, so that a long
// wait for a handler does not get msg redelivered to another replica (the
// envelopes buffered behind msg are claimed if they waited long, see
// pulled). Once the group drains, it sets msg aside instead, to be handed
// back to the stream for another replica (handBackUnstarted).
func (r *runner) onMsg(p int, msg jetstream.Msg) {
	if r.hand(p, msg) {
		return
	}
	r.unstarted.Lock()
	r.unstarted.msgs = append(r.unstarted.msgs, msg)
	r.unstarted.Unlock()
}

// hand gives msg, of partition p, to a pool goroutine, waiting for one to
// be free, and reports whether it did; false once the group drains.
func (r *runner) hand(p int, msg jetstream.Msg) bool {
	select {
	case <-r.draining:
		return false
	default:
	}
	b := &r.buffered[p]
	mayBeCopy := b.waited(r.topo.AckWait / 4)
	select {
	case r.work <- pulled{msg, mayBeCopy}:
		b.taken()
		return true
	default:
	}
	b.block()
	defer b.unblocked(2 * r.o.Batch)
	t := time.NewTicker(r.topo.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case r.work <- pulled{msg, mayBeCopy}:
			return true
		case <-t.C:
			_ = msg.InProgress()
			mayBeCopy = mayBeCopy || b.waited(r.topo.AckWait/4)
		case <-r.draining:
			return false
		}
	}
}

// aborted reports whether the drain deadline has passed.
func (r *runner) aborted() bool { return r.base.Err() != nil }

// PartitionShare is a replica's share of the request partitions (see
// Options.Share): replica Index of Of.
type PartitionShare struct{ Index, Of int }

// take returns the consumers of the share's partitions (all for a zero
// share), or an error for a share that cannot be taken: Index outside 0
// to Of-1, or more replicas than partitions.
func (s PartitionShare) take(consumers []jetstream.Consumer) ([]jetstream.Consumer, error) {
	if s == (PartitionShare{}) {
		return consumers, nil
	}
	if s.Of < 1 || s.Index < 0 || s.Index >= s.Of {
		return nil, fmt.Errorf("partition share %d of %d: want 0 <= index < count", s.Index, s.Of)
	}
	if s.Of > len(consumers) {
		return nil, fmt.Errorf("partition share %d of %d: only %d partitions, fewer than the replicas sharing them", s.Index, s.Of, len(consumers))
	}
	var out []jetstream.Consumer
	for p := s.Index; p < len(consumers); p += s.Of {
		out = append(out, consumers[p])
	}
	return out, nil
}
