package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpstream/mcpstream/auth"
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
	// MaxBodyMemory bounds the bytes of request bodies the gateway holds
	// at once: those being read, and those of POSTs still being served
	// (default a quarter of Go's memory limit when one is set, else 1 GiB;
	// never less than MaxBody). A body that would pass it is refused with
	// 503, Retry-After and -32000, and its connection closed, so that many
	// large or slowly sent bodies cannot exhaust the gateway's memory.
	MaxBodyMemory int64
	// MaxDepth bounds JSON nesting of a request (default 64): deeper,
	// HTTP 400 with -32600, checked before anything is decoded.
	MaxDepth int
	// HeaderTimeout bounds the time a client may take to send a request's
	// headers (default 10s): slower, the connection is closed unanswered.
	// It applies through [Gateway.ConfigureServer].
	HeaderTimeout time.Duration
	// BodyTimeout and MinBodyRate bound the time a client may take to send
	// a request's body: BodyTimeout (default 10s) plus what MinBodyRate
	// (bytes a second, default 16 KiB/s) allows for the bytes sent so far,
	// so that a steady upload of MaxBody at that rate completes (4 MiB:
	// 4m26s) while a client sending a byte a second is cut off after
	// BodyTimeout. Slower, HTTP 408 with -32600, and the connection is
	// closed. MinBodyRate also paces answers: a client must take an
	// answer within 2s plus what MinBodyRate allows for its size, or its
	// connection is closed (event streams: 2s each write), so that one
	// that stops reading holds no goroutine.
	BodyTimeout time.Duration
	MinBodyRate int64
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request (default 120s) before the gateway closes it. It
	// applies through [Gateway.ConfigureServer].
	IdleTimeout time.Duration
	// MaxConns bounds the connections open at once, event streams
	// included (default three quarters of the process's open-file limit,
	// at least 64, or 10,000 where it is unknown): beyond it a connection
	// is answered at once with 503, Retry-After and -32000, and closed. It
	// applies through [Gateway.LimitListener].
	MaxConns int
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
	// GroupQueueTarget is the longest wait behind a worker group's backlog
	// that a call may expect: beyond it the call is refused at once with
	// 503, Retry-After and -32000 naming the group (default 50ms; a group
	// or tool may set its own, workers.Options.QueueTarget and
	// workers.Tool.QueueTarget; negative: no admission per group). The
	// wait is estimated from the load reports of the group's replicas and
	// the other gateways (groupload.go), and the expected wait is not
	// counted as queueing by QueueTarget's limit.
	GroupQueueTarget time.Duration
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
	// MaxBatch bounds the messages of one JSON-RPC batch, on Streamable
	// HTTP (revision 2025-03-26) and on the HTTP+SSE transport (default
	// 100): a batch of more is refused whole, before any of it runs, with
	// HTTP 400 and -32600 saying how many are allowed, and the client may
	// send them in smaller batches. MaxBody alone would let one POST hold
	// some 100,000 pings, each one's answer kept until the last is done.
	MaxBatch int
	// BatchConcurrency bounds the requests of one batch served at once
	// (default 8): the next waits for one of them to be done (over
	// Streamable HTTP, for its answer to be written, in order), so that a
	// batch holds at most that many goroutines, calls and answers of its
	// own. Each request is still admitted (MaxSessionInFlight and the
	// other caps) and counted against its principal's rate
	// (PrincipalRate) on its own.
	BatchConcurrency int
	// MaxEventStreams bounds the event streams open on the gateway
	// (session GET streams, subscriptions/listen streams, HTTP+SSE
	// streams; default 20,000): beyond it a request that would open
	// another (a session's GET, a subscriptions/listen, a GET of the
	// HTTP+SSE transport) is refused with 503, Retry-After and -32000; a
	// GET that replaces its session's stream here opens none more and is
	// served.
	MaxEventStreams int
	// Auth authenticates every request, on every transport, before its
	// body is read, and names its principal (see package auth): an
	// [auth.JWT] validates OAuth bearer tokens itself, an [auth.APIKeys]
	// (auth.WatchAPIKeys) API keys, an [auth.Header] trusts a proxy's
	// header. Nil (the default) means no authentication and no
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
	// PrincipalRate, if positive, limits the requests each principal
	// (see Auth) makes of this gateway, over every transport and session:
	// PrincipalRate a second, in bursts of up to PrincipalBurst (default
	// PrincipalRate rounded up, at least 1). A request beyond it is held
	// (PrincipalRateHold) and then served or refused with HTTP 429,
	// Retry-After, and -32000 whose data's retryAfterMs says when the next
	// is allowed. notifications/cancelled, passed to every worker, counts
	// as a request does (one past the rate in a batch, or over HTTP+SSE,
	// is dropped); the other notifications and answers to the server's
	// requests are not counted, nor anonymous requests. Zero (the
	// default) sets no limit.
	PrincipalRate  float64
	PrincipalBurst int
	// PrincipalRateHold is how long a request over its principal's rate
	// is held (default 1s; negative: refused at once): one whose token
	// comes within it waits for it and is served; another is refused
	// after the hold, its Retry-After the time left. Holding slows a
	// client that ignores Retry-After down to the rate, where refusing at
	// once would let it come straight back and spend the gateway's CPU on
	// refusals. The gateway holds at most MaxConns / 4 requests, a
	// principal a quarter of those; beyond, 429 at once.
	PrincipalRateHold time.Duration
	// SessionCache bounds the sessions cached in memory (default 100,000).
	SessionCache int
	// AllowedOrigins lists Origin values accepted besides loopback ones
	// ("*" accepts any). A request with another Origin gets HTTP 403.
	AllowedOrigins []string
	// KeepAlive is the interval of SSE comments on idle GET streams
	// (default 25s), and of the check of each event stream's credential:
	// a stream whose API key was revoked or whose token expired is closed
	// at the next one.
	KeepAlive time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// ServerInfo is what initialize and server/discover report (default
	// mcpstream), and what stateless results carry in _meta.
	ServerInfo schema.Implementation
	// Instructions, if set, are the server's instructions to the model in
	// initialize and server/discover.
	Instructions string
	// TracerProvider, if set, traces the requests the gateway serves in
	// OpenTelemetry (observe.go): a SERVER span a request, named
	// "{mcp.method.name} {target}", under the trace context the client
	// sent, and a PRODUCER span for each publish of its envelope, whose
	// context reaches the worker. Nil (the default) makes no span.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the MCP conventions' metrics:
	// mcp.server.operation.duration for every request,
	// mcp.server.session.duration for every session that ends here. Nil
	// (the default) records nothing.
	MeterProvider metric.MeterProvider
	// Propagator reads and writes trace context: in requests' _meta and
	// HTTP headers, in envelopes and NATS headers (default W3C trace
	// context and baggage).
	Propagator propagation.TextMapPropagator
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
	if c.MaxBodyMemory <= 0 {
		c.MaxBodyMemory = 1 << 30
		if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
			c.MaxBodyMemory = limit / 4
		}
	}
	c.MaxBodyMemory = max(c.MaxBodyMemory, c.MaxBody)
	if c.MaxDepth <= 0 {
		c.MaxDepth = schema.MaxDepth
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MinBodyRate <= 0 {
		c.MinBodyRate = 16 << 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = defaultMaxConns()
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
	if c.GroupQueueTarget == 0 {
		c.GroupQueueTarget = 50 * time.Millisecond
	}
	if c.MaxPrincipalInFlight <= 0 {
		c.MaxPrincipalInFlight = 256
	}
	if c.MaxEventStreams <= 0 {
		c.MaxEventStreams = 20_000
	}
	if c.MaxSessionInFlight <= 0 {
		c.MaxSessionInFlight = 64
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 100
	}
	if c.BatchConcurrency <= 0 {
		c.BatchConcurrency = 8
	}
	if c.PrincipalBurst <= 0 {
		c.PrincipalBurst = max(1, int(math.Ceil(c.PrincipalRate)))
	}
	if c.PrincipalRateHold == 0 {
		c.PrincipalRateHold = time.Second
	}
	if c.SessionCache <= 0 {
		c.SessionCache = 100_000
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 25 * time.Second
	}
	if c.Propagator == nil {
		c.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ServerInfo.Name == "" {
		c.ServerInfo = schema.Implementation{Name: "mcpstream", Version: Version}
	}
	return c
}
