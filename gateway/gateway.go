package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/cors"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway/internal/admission"
	"github.com/mcpstream/mcpstream/internal/logging"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Version is the mcpstream version reported in serverInfo.
const Version = "0.1.0"

// Gateway serves MCP over Streamable HTTP (every revision, on one
// endpoint) and the 2024-11-05 HTTP+SSE transport, and routes requests
// through JetStream to worker groups. [Gateway.Mount] serves its
// endpoints on a mux; it is also the http.Handler of the MCP endpoint.
type Gateway struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	topo   streams.Topology
	log    *slog.Logger
	reg    *registry
	router *router
	// elections wakes the requests waiting to publish again to a request
	// stream that has just got a new leader (elections.go).
	elections elections
	// repeats holds back repeats of a failure that hits every request
	// in flight.
	repeats logging.Repeats
	// loads admits calls per worker group (groupload.go); nil with
	// Config.GroupQueueTarget negative.
	loads    *groupLoads
	sessions *sessions
	// eventStreams are the event streams open here (eventstream.go).
	eventStreams *eventStreamSet
	replyTo      string
	// bodies counts the request bodies held, up to Config.MaxBodyMemory
	// (readBody).
	bodies bodyMemory
	// tasks is the task bucket (the tasks extension).
	tasks jetstream.KeyValue
	// results is the result bucket, where a reply lost around a reconnect
	// is looked for (recover.go).
	results jetstream.KeyValue
	// events is the events stream, what session event streams carry
	// (events.go).
	events jetstream.Stream
	// serverInfo is cfg.ServerInfo as JSON.
	serverInfo []byte
	// cors answers preflights and sets CORS response headers for
	// allowed origins.
	cors *cors.Cors
	// metadata is the protected resource metadata (nil without a
	// configured resource).
	metadata *auth.Metadata
	sub      *nats.Subscription
	// ackPrefix starts the reply subject of each request published, so
	// that the stream's acknowledgement reaches ackSub with the request's
	// key (streams.PubAckPrefix).
	ackPrefix string
	ackSub    *nats.Subscription
	// subs are the other subscriptions Close ends: leader elections
	// (elections.go) and load reports (groupload.go).
	subs []*nats.Subscription

	metrics *metrics  // nil without Config.Metrics
	obs     *observer // nil without Config.TracerProvider or MeterProvider

	keySeq atomic.Uint64
	// sseCallSeq numbers the HTTP+SSE POSTs this gateway marks (httpsse.go).
	sseCallSeq atomic.Uint64
	admission  *admission.Controller
	// rates limits each principal's requests (nil: no limit); holds
	// counts the requests held over their principal's rate, at most
	// maxHolds (Config.MaxConns / 4).
	rates    *rateLimiter
	holds    atomic.Int64
	maxHolds int64

	// ctx is the context of every goroutine the gateway starts (start);
	// Close cancels it (stop) and waits for them (wg). It is the one stop
	// signal.
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed, and wg.Add against Close's Wait
	closed bool
	// drain is closed by Drain: event streams end, new requests get 503.
	drain     chan struct{}
	drainOnce sync.Once
	// calls counts the requests being served (dispatch), for Shutdown.
	calls inFlight
	// cut is closed when Shutdown's deadline passes: the calls still
	// waiting on workers are answered with errShutDown.
	cut     chan struct{}
	cutOnce sync.Once
	// retired is set by Retire (and Drain): Ready fails.
	retired atomic.Bool
}

// New starts a gateway on nc: it provisions the topology if none exists,
// subscribes to its reply subject, and waits (within ctx) until the registry
// snapshot holds the bucket's current state. The caller owns nc. It returns
// an error for an invalid ID, an invalid authentication setup (Auth and
// PrincipalHeader both set, an auth.JWT without a resource, a malformed
// resource) or when JetStream cannot be reached.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Gateway, error) {
	if cfg.Auth != nil && cfg.PrincipalHeader != "" {
		return nil, errors.New("gateway: set Auth or PrincipalHeader, not both")
	}
	cfg = cfg.withDefaults()
	if err := streams.CheckName("gateway", cfg.ID); err != nil {
		return nil, err
	}
	metadata, err := auth.NewMetadata(cfg.ResourceMetadata, cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("gateway: opening JetStream: %w", err)
	}
	topo, err := streams.Ensure(ctx, js, cfg.Topology)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{
		cfg: cfg, nc: nc, js: js, topo: topo,
		log:          cfg.Logger.With("gateway", cfg.ID),
		replyTo:      streams.ReplySubject(cfg.ID),
		ackPrefix:    streams.PubAckPrefix(cfg.ID),
		serverInfo:   func() []byte { b, _ := json.Marshal(cfg.ServerInfo); return b }(),
		metadata:     metadata,
		drain:        make(chan struct{}),
		cut:          make(chan struct{}),
		eventStreams: newEventStreamSet(),
	}
	if g.obs, err = newObserver(cfg); err != nil {
		return nil, fmt.Errorf("gateway: telemetry instruments: %w", err)
	}
	g.ctx, g.stop = context.WithCancel(context.Background())
	g.rates = newRateLimiter(cfg.PrincipalRate, cfg.PrincipalBurst)
	g.maxHolds = int64(max(1, cfg.MaxConns/4))
	g.bodies.max = cfg.MaxBodyMemory
	if cfg.GroupQueueTarget > 0 {
		g.loads = newGroupLoads(cfg.ID, loadInterval, cfg.GroupQueueTarget)
	}
	g.admission = admission.New(admission.Config{MaxInFlight: int64(cfg.MaxInFlight), QueueTarget: cfg.QueueTarget,
		MaxSession: int32(cfg.MaxSessionInFlight), MaxPrincipal: cfg.MaxPrincipalInFlight,
		Queueing: func(d time.Duration) { g.metrics.queueOverhead(d) }})
	g.cors = newCORS(g.originAllowed)
	g.reg = newRegistry(g.log, topo.Partitions)
	g.router = newRouter(g.log, func(rep *schema.Reply) {
		g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError, "%s: the call it belongs to is no longer waiting here", rep.Method))
	})
	if err := g.open(ctx); err != nil {
		g.Close()
		return nil, err
	}
	g.log.Info("gateway ready", "partitions", topo.Partitions, "tools", g.reg.Load().Len())
	return g, nil
}

// open opens the buckets and the events stream, starts the watchers and
// subscribes to the reply subjects, and waits (within ctx) for the
// registry snapshot.
func (g *Gateway) open(ctx context.Context) error {
	regKV, err := g.js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		return fmt.Errorf("gateway: opening bucket %s: %w", streams.RegistryBucket, err)
	}
	sessKV, err := g.js.KeyValue(ctx, streams.SessionBucket)
	if err != nil {
		return fmt.Errorf("gateway: opening bucket %s: %w", streams.SessionBucket, err)
	}
	sessStatus, err := sessKV.Status(ctx)
	if err != nil {
		return fmt.Errorf("gateway: reading bucket %s's configuration: %w", streams.SessionBucket, err)
	}
	g.sessions = newSessions(sessKV, sessStatus.TTL(), g.cfg.SessionCache, g.log)
	if g.results, err = g.js.KeyValue(ctx, streams.ResultBucket); err != nil {
		return fmt.Errorf("gateway: opening bucket %s: %w", streams.ResultBucket, err)
	}
	if g.tasks, err = streams.TaskBucketOf(ctx, g.js, g.topo); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if g.events, err = streams.EventsStreamOf(ctx, g.js, g.topo); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	regW, err := regKV.WatchAll(g.ctx)
	if err != nil {
		return fmt.Errorf("gateway: watching registry: %w", err)
	}
	sessW, err := sessKV.WatchAll(g.ctx, jetstream.UpdatesOnly())
	if err != nil {
		regW.Stop()
		return fmt.Errorf("gateway: watching sessions: %w", err)
	}
	reconnected := g.nc.StatusChanged(nats.CONNECTED)
	g.start(func(ctx context.Context) { g.reg.watch(ctx, regW) })
	g.start(func(ctx context.Context) { g.sessions.watch(ctx, sessW) })
	g.start(func(ctx context.Context) { g.router.sweep(ctx.Done(), pubAckTick) })
	g.start(func(ctx context.Context) {
		defer g.nc.RemoveStatusListener(reconnected)
		for {
			select {
			case <-ctx.Done():
				return
			case <-reconnected:
				g.router.suspectAll()
			}
		}
	})
	g.start(g.keepAlive)
	g.start(g.announceListChanges)
	if g.cfg.CPUQueueTarget > 0 {
		g.start(func(ctx context.Context) { g.admission.WatchCPU(ctx, g.cfg.CPUQueueTarget, 100*time.Millisecond) })
	}

	if g.sub, err = g.nc.Subscribe(g.replyTo, g.router.deliver); err != nil {
		return fmt.Errorf("gateway: subscribing to %s: %w", g.replyTo, err)
	}
	if err := g.sub.SetPendingLimits(-1, 256<<20); err != nil {
		return fmt.Errorf("gateway: reply subscription limits: %w", err)
	}
	g.ackSub, err = g.nc.Subscribe(g.ackPrefix+"*", func(m *nats.Msg) {
		g.router.pubAck(m.Subject[len(g.ackPrefix):], m)
	})
	if err != nil {
		return fmt.Errorf("gateway: subscribing to %s*: %w", g.ackPrefix, err)
	}
	if err := g.ackSub.SetPendingLimits(-1, 256<<20); err != nil {
		return fmt.Errorf("gateway: acknowledgement subscription limits: %w", err)
	}
	if err := g.watchElections(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if g.loads != nil {
		if err := g.listenLoads(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.start(func(ctx context.Context) { g.loads.report(ctx, g.nc) })
	}
	if err := g.followEvents(); err != nil {
		return fmt.Errorf("gateway: following stream %s: %w", streams.EventsStream, err)
	}
	if err := g.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("gateway: flushing subscription: %w", err)
	}
	select {
	case <-g.reg.ready:
	case <-ctx.Done():
		return fmt.Errorf("gateway: waiting for registry: %w", ctx.Err())
	}
	if g.metrics, err = newMetrics(g.cfg.Metrics, g); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// start runs fn in a goroutine the gateway owns: fn's ctx ends when Close
// begins, and Close waits for fn to return. After Close, start runs
// nothing and returns false.
func (g *Gateway) start(fn func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
	return true
}

// Paths Mount serves.
const (
	// HealthPath is the liveness check: 200 while the gateway's NATS
	// connection is up.
	HealthPath = "/healthz"
	// ReadyPath is the readiness check: 200 while Ready says so.
	ReadyPath = "/readyz"
	// MCPPath is the MCP endpoint: Streamable HTTP, every revision.
	MCPPath = "/mcp"
	// SSEPath and MessagesPath are the 2024-11-05 HTTP+SSE transport's:
	// its event stream, and where its messages are POSTed.
	SSEPath      = "/sse"
	MessagesPath = "/messages"
)

// Mount serves the gateway's endpoints on mux: the MCP endpoint at
// MCPPath, the HTTP+SSE transport at SSEPath and MessagesPath, the
// liveness and readiness checks at HealthPath and ReadyPath, and, when
// Config.ResourceMetadata names a resource, the protected resource
// metadata at auth.MetadataPath and below it. To serve them elsewhere,
// use the Gateway (the MCP endpoint's handler), [Gateway.HTTPSSE] and
// [Gateway.ResourceMetadataHandler].
func (g *Gateway) Mount(mux *http.ServeMux) {
	mux.Handle(MCPPath, g)
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		if st := g.nc.Status(); st != nats.CONNECTED {
			http.Error(w, "nats "+st.String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		if err := g.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	sse := g.HTTPSSE(MessagesPath)
	mux.Handle(SSEPath, sse)
	mux.Handle(MessagesPath, sse)
	if g.metadata != nil {
		mux.Handle(auth.MetadataPath, g.metadata)
		mux.Handle(auth.MetadataPath+"/", g.metadata)
	}
}

// ID returns the gateway's id.
func (g *Gateway) ID() string { return g.cfg.ID }

// Registry returns the current registry snapshot.
func (g *Gateway) Registry() *Snapshot { return g.reg.Load() }

// InFlight is the number of requests waiting on workers.
func (g *Gateway) InFlight() int64 { return g.admission.InFlight() }

// OpenEventStreams is the number of event streams open on this gateway
// (session GET streams, subscriptions/listen streams, HTTP+SSE streams).
func (g *Gateway) OpenEventStreams() int64 { return g.eventStreams.open.Load() }

// Drain refuses new requests with 503 and Retry-After, for their clients
// to try another gateway, and ends the open event streams that carry no
// answers (a listen stream gets its final answer), so that an
// http.Server's Shutdown only waits for the requests already in flight.
// An HTTP+SSE stream, which carries its session's answers, ends once the
// calls its session posted here are answered; meanwhile new requests
// POSTed for it are refused as all others are. Drain returns at once.
func (g *Gateway) Drain() {
	g.drainOnce.Do(func() {
		g.Retire()
		close(g.drain)
		g.start(func(context.Context) { g.eventStreams.each(drainStream) })
	})
}

// Ready reports whether the gateway should be sent new clients: nil while
// it is connected to NATS, its topology provisioned and its registry
// snapshot loaded (New saw to both), and it has not been retired or
// drained; otherwise why not.
func (g *Gateway) Ready() error {
	switch {
	case g.retired.Load():
		return errors.New("retiring: the gateway is about to drain")
	case g.nc.Status() != nats.CONNECTED:
		return fmt.Errorf("nats %s", g.nc.Status())
	}
	select {
	case <-g.reg.ready:
	default:
		return errors.New("registry snapshot not loaded")
	}
	return nil
}

// Retire makes Ready fail while the gateway goes on serving, so that load
// balancers stop sending it new clients before it drains (Drain retires
// it too).
func (g *Gateway) Retire() { g.retired.Store(true) }

// draining reports whether Drain was called.
func (g *Gateway) draining() bool {
	select {
	case <-g.drain:
		return true
	default:
		return false
	}
}

// Close shuts the gateway down if Shutdown has not (with no time left:
// the calls still waiting on workers are answered with errShutDown at
// once), stops every goroutine it started (watchers, the reply sweep,
// event streams and their endings) and waits for them, then unsubscribes
// and unregisters the metrics. Call it after the HTTP server has shut
// down. It leaves nc open.
func (g *Gateway) Close() {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	_ = g.Shutdown(now) // answers what still waits, if Shutdown has not
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.stop()
	g.eventStreams.each((*eventStream).close)
	g.wg.Wait()
	for _, s := range append([]*nats.Subscription{g.sub, g.ackSub}, g.subs...) {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
	g.metrics.unregister()
}

// nextKey returns a request key unique across gateways and restarts (the
// gateway id is random and the counter is per process), and the reply
// subject that the stream's acknowledgement of its publish comes to: the
// gateway's ack prefix, then the key. Both are one allocation, the key
// the subject's tail.
func (g *Gateway) nextKey() (key, ackSubject string) {
	var buf [128]byte // on the stack: the one allocation is the string
	k := append(append(append(buf[:0], g.ackPrefix...), g.cfg.ID...), '-')
	ackSubject = string(strconv.AppendUint(k, g.keySeq.Add(1), 36))
	return ackSubject[len(g.ackPrefix):], ackSubject
}
