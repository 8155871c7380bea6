package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/cors"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway/internal/admission"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// Config configures a [Gateway]. The zero value is usable: every zero field
// takes the default named on it.
type Config struct {
	// ID names the gateway; replies come to mcp.reply.<ID> (default random).
	ID string
	// Topology is used when none has been provisioned yet; a recorded
	// topology always wins.
	Topology streams.Topology
	// MaxBody bounds a request body (default 4 MiB): beyond it, HTTP 413.
	MaxBody int64
	// MaxDepth bounds JSON nesting of a request (default 64).
	MaxDepth int
	// CallTimeout is how long a request routed to a worker may take
	// (default 60s); the deadline travels in the envelope.
	CallTimeout time.Duration
	// MaxInFlight bounds requests waiting on workers in this gateway
	// (default 10,000). Below it, the limit adapts to queueing: see
	// QueueTarget.
	MaxInFlight int
	// QueueTarget is the queueing a call may see before the gateway lowers
	// its in-flight limit and refuses the excess (default 10ms; queueing is
	// a call's latency less its handler's run time).
	QueueTarget time.Duration
	// CPUQueueTarget, if set, is how long goroutines may wait for the
	// gateway's CPU (the 99th percentile of Go's scheduling latency over
	// 100 ms) before the gateway halves its in-flight limit, down to 8 per
	// core, and refuses the excess: requests queued for a saturated CPU
	// wait before the admission check, where QueueTarget cannot see them.
	// Zero (the default) leaves it off, because it cannot tell an overload
	// from many clients that each wait for their answer (a closed loop)
	// saturating the CPU, and sheds those too; 7ms is a good value.
	CPUQueueTarget time.Duration
	// MaxSessionInFlight bounds one session's requests waiting on workers
	// (default 64).
	MaxSessionInFlight int
	// MaxStreams bounds the subscriptions/listen streams open on the
	// gateway (default 20,000); beyond it a listen is refused with 503.
	MaxStreams int
	// Auth authenticates every request, on every transport, before its
	// body is read, and names its principal (see package auth): an
	// [auth.JWT] validates OAuth bearer tokens itself, an [auth.Header]
	// trusts a proxy's header. Nil (the default) means no authentication and no
	// principals. With principals, a session belongs to the principal that
	// initialized it (a request presenting another principal is answered
	// 404, as for an unknown session), a task to the principal that
	// started it, and MaxPrincipalInFlight applies.
	Auth auth.Authenticator
	// ResourceMetadata describes the gateway as an OAuth protected resource
	// (RFC 9728): the metadata document it serves and names in its
	// challenges. Its Resource is required with an auth.JWT.
	ResourceMetadata auth.ResourceMetadata
	// PrincipalHeader is a shorthand for Auth: auth.Header{Name:
	// PrincipalHeader}: the header, set by an authenticating proxy in
	// front of the gateway (for example X-Auth-Request-User), names the
	// principal. Only enable it behind a proxy that sets the header and
	// strips it from clients. Setting both it and Auth is an error.
	PrincipalHeader string
	// MaxPrincipalInFlight bounds one principal's requests waiting on
	// workers, over all its sessions on this gateway (default 256).
	MaxPrincipalInFlight int
	// SessionCache bounds the sessions cached in memory (default 100,000).
	SessionCache int
	// AllowedOrigins lists Origin values accepted besides loopback ones
	// ("*" accepts any). A request with another Origin gets HTTP 403.
	AllowedOrigins []string
	// KeepAlive is the interval of SSE comments on idle GET streams
	// (default 25s).
	KeepAlive time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// ServerInfo is what initialize and server/discover report (default
	// mcpstream), and what stateless results carry in _meta.
	ServerInfo schema.Implementation
	// Instructions, if set, are the server's instructions to the model in
	// initialize and server/discover.
	Instructions string
	// Metrics, if set, is where the gateway registers its Prometheus
	// metrics (see metrics.go; every series is labelled gateway=<ID>):
	// requests by method and outcome, their duration, refusals by reason,
	// calls in flight and the adaptive limit, open event streams, cached
	// sessions and the queueing the limit sees. Close unregisters them.
	// Nil (the default) exports nothing.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.Auth == nil && c.PrincipalHeader != "" {
		c.Auth = auth.Header{Name: c.PrincipalHeader}
	}
	if c.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ID = "gw-" + hex.EncodeToString(b[:])
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 4 << 20
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = schema.MaxDepth
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 60 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10_000
	}
	if c.QueueTarget <= 0 {
		c.QueueTarget = 10 * time.Millisecond
	}
	if c.MaxPrincipalInFlight <= 0 {
		c.MaxPrincipalInFlight = 256
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 20_000
	}
	if c.MaxSessionInFlight <= 0 {
		c.MaxSessionInFlight = 64
	}
	if c.SessionCache <= 0 {
		c.SessionCache = 100_000
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 25 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ServerInfo.Name == "" {
		c.ServerInfo = schema.Implementation{Name: "mcpstream", Version: Version}
	}
	return c
}

// Version is the mcpstream version reported in serverInfo.
const Version = "0.1.0"

// Gateway serves MCP over Streamable HTTP and routes requests through
// JetStream to worker groups. It is an http.Handler for the MCP endpoint.
type Gateway struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	topo     streams.Topology
	log      *slog.Logger
	reg      *registry
	router   *router
	sessions *sessions
	streams  *streamSet
	replyTo  string
	// tasks is the task bucket (the tasks extension).
	tasks jetstream.KeyValue
	// results is the result bucket, where a reply lost around a reconnect
	// is looked for (recover.go).
	results jetstream.KeyValue
	// events is the events stream (what session event streams carry).
	events jetstream.Stream
	// serverInfo is cfg.ServerInfo as JSON.
	serverInfo []byte
	// cors answers preflights and sets CORS response headers for
	// allowed origins.
	cors *cors.Cors
	// doorRefusal is the answer to a request refused before its body is
	// read, encoded once: under overload refusals must cost little.
	doorRefusal []byte
	// metadata is the protected resource metadata (nil without a
	// configured resource).
	metadata *auth.Metadata
	sub      *nats.Subscription
	// ackPrefix starts the reply subject of each request published, so
	// that the stream's acknowledgement reaches ackSub with the request's
	// key (streams.PubAckPrefix).
	ackPrefix string
	ackSub    *nats.Subscription
	updates   *nats.Subscription // schema.ResourceUpdatedSubject
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	metrics *metrics // nil without Config.Metrics

	keySeq    atomic.Uint64
	admission *admission.Controller
	// closing is closed by Drain: event streams end, new requests get 503.
	closing   chan struct{}
	closeOnce sync.Once
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
		log:         cfg.Logger.With("gateway", cfg.ID),
		replyTo:     streams.ReplySubject(cfg.ID),
		ackPrefix:   streams.PubAckPrefix(cfg.ID),
		serverInfo:  func() []byte { b, _ := json.Marshal(cfg.ServerInfo); return b }(),
		doorRefusal: schema.AppendError(nil, nil, schema.OverloadedError("gateway in-flight limit reached", 1000)),
		metadata:    metadata,
		closing:     make(chan struct{}),
		streams:     newStreamSet(),
	}
	g.admission = admission.New(admission.Config{MaxInFlight: int64(cfg.MaxInFlight), QueueTarget: cfg.QueueTarget,
		MaxSession: int32(cfg.MaxSessionInFlight), MaxPrincipal: cfg.MaxPrincipalInFlight,
		Queueing: func(d time.Duration) { g.metrics.queueOverhead(d) }})
	g.cors = newCORS(g.originAllowed)
	g.reg = newRegistry(g.log)
	g.router = newRouter(g.log, func(rep *schema.Reply) {
		g.refuseClientRequest(rep, schema.Errorf(schema.CodeInternalError, "%s: the call it belongs to is no longer waiting here", rep.Method))
	})

	regKV, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		return nil, fmt.Errorf("gateway: opening bucket %s: %w", streams.RegistryBucket, err)
	}
	sessKV, err := js.KeyValue(ctx, streams.SessionBucket)
	if err != nil {
		return nil, fmt.Errorf("gateway: opening bucket %s: %w", streams.SessionBucket, err)
	}
	g.sessions = newSessions(sessKV, cfg.SessionCache, g.log)
	if g.results, err = js.KeyValue(ctx, streams.ResultBucket); err != nil {
		return nil, fmt.Errorf("gateway: opening bucket %s: %w", streams.ResultBucket, err)
	}
	if g.tasks, err = streams.TaskBucketOf(ctx, js, topo); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if g.events, err = streams.EventsStreamOf(ctx, js, topo); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}

	wctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	regW, err := regKV.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gateway: watching registry: %w", err)
	}
	sessW, err := sessKV.WatchAll(wctx, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gateway: watching sessions: %w", err)
	}
	reconnected := nc.StatusChanged(nats.CONNECTED)
	g.wg.Add(6)
	go func() { defer g.wg.Done(); g.reg.watch(wctx, regW) }()
	go func() { defer g.wg.Done(); g.router.sweep(wctx.Done(), pubAckTick) }()
	go func() {
		defer g.wg.Done()
		defer nc.RemoveStatusListener(reconnected)
		for {
			select {
			case <-wctx.Done():
				return
			case <-reconnected:
				g.router.suspectAll()
			}
		}
	}()
	go func() { defer g.wg.Done(); g.sessions.watch(wctx, sessW) }()
	go func() { defer g.wg.Done(); g.keepAlive(cfg.KeepAlive) }()
	go func() { defer g.wg.Done(); g.announceListChanges() }()
	if cfg.CPUQueueTarget > 0 {
		g.wg.Add(1)
		go func() { defer g.wg.Done(); g.admission.WatchCPU(wctx, cfg.CPUQueueTarget, 100*time.Millisecond) }()
	}

	if g.sub, err = nc.Subscribe(g.replyTo, g.router.deliver); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: subscribing to %s: %w", g.replyTo, err)
	}
	if err := g.sub.SetPendingLimits(-1, 256<<20); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: reply subscription limits: %w", err)
	}
	g.ackSub, err = nc.Subscribe(g.ackPrefix+"*", func(m *nats.Msg) {
		g.router.pubAck(m.Subject[len(g.ackPrefix):], m)
	})
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: subscribing to %s*: %w", g.ackPrefix, err)
	}
	if err := g.ackSub.SetPendingLimits(-1, 256<<20); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: acknowledgement subscription limits: %w", err)
	}
	if err := g.followEvents(wctx); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: following stream %s: %w", streams.EventsStream, err)
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: flushing subscription: %w", err)
	}
	select {
	case <-g.reg.ready:
	case <-ctx.Done():
		g.Close()
		return nil, fmt.Errorf("gateway: waiting for registry: %w", ctx.Err())
	}
	if g.metrics, err = newMetrics(cfg.Metrics, g); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.log.Info("gateway ready", "partitions", topo.Partitions, "tools", g.reg.Load().Len())
	return g, nil
}

// ID returns the gateway's id.
func (g *Gateway) ID() string { return g.cfg.ID }

// Registry returns the current registry snapshot.
func (g *Gateway) Registry() *Snapshot { return g.reg.Load() }

// InFlight is the number of requests waiting on workers.
func (g *Gateway) InFlight() int64 { return g.admission.InFlight() }

// OpenStreams is the number of GET event streams open on this gateway.
func (g *Gateway) OpenStreams() int64 { return g.streams.open.Load() }

// Drain ends open event streams and refuses new requests with 503, so that
// an http.Server's Shutdown only waits for requests already in flight.
func (g *Gateway) Drain() { g.closeOnce.Do(func() { close(g.closing) }) }

// Close stops the watchers and the reply subscriptions, and unregisters the
// metrics. Call it after the HTTP server has shut down.
func (g *Gateway) Close() {
	g.Drain()
	for _, s := range []*nats.Subscription{g.sub, g.ackSub} {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
	g.cancel()
	g.wg.Wait()
	g.metrics.unregister()
}

// nextKey returns a request key unique across gateways and restarts: the
// gateway id is random and the counter is per process.
func (g *Gateway) nextKey() string {
	return g.cfg.ID + "-" + strconv.FormatUint(g.keySeq.Add(1), 36)
}

// refuseDraining answers 503 + Retry-After to a request (id) arriving
// while the gateway drains, for the client to try another gateway (any
// may take a session's request, or a stateless one), and reports whether
// it did.
func (g *Gateway) refuseDraining(w http.ResponseWriter, id schema.ID) bool {
	select {
	case <-g.closing:
	default:
		return false
	}
	g.metrics.refused(refusedDraining)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, id, schema.OverloadedError("gateway shutting down", 1000))
	return true
}
