package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// Transports (Config.Transport).
const (
	// TransportAuto is stdio for a command, and for a URL Streamable HTTP,
	// falling back to the 2024-11-05 HTTP+SSE transport when initialize
	// over Streamable HTTP fails.
	TransportAuto       = "auto"
	TransportStdio      = "stdio"
	TransportStreamable = "streamable"
	TransportSSE        = "sse"
)

// Affinity modes (Config.Affinity).
const (
	// AffinityNone spreads calls over the pool: each goes to the
	// connection with the fewest requests in flight. For stateless
	// servers (most are): any process answers any call.
	AffinityNone = "none"
	// AffinitySession sends all calls of a client session to one pooled
	// connection of the worker that serves them (see the package
	// documentation for which worker that is).
	AffinitySession = "session"
)

// Config describes the upstream server and how its definitions are
// registered. Set Command or URL; the zero values of the rest work.
type Config struct {
	// Command is the stdio server's command line, split into words (see
	// SplitCommand), started Pool times.
	Command []string
	// Env are NAME=value entries added to the command's environment,
	// which is the worker's less its MCPSTREAM_* variables (the NATS
	// credentials among them).
	Env []string
	// Dir is the command's working directory (default the worker's).
	Dir string
	// URL is an HTTP server's MCP endpoint, instead of Command.
	URL string
	// Headers are sent with every HTTP request (credentials).
	Headers http.Header
	// Transport is TransportAuto (default), TransportStdio,
	// TransportStreamable or TransportSSE.
	Transport string
	// Pool is how many connections (processes, or HTTP sessions) each
	// worker keeps (default 2): the calls one worker runs on the upstream
	// at once are spread over them.
	Pool int
	// MaxPending bounds the requests in flight on one connection (default
	// 16), a request cancelled but not answered yet among them: the
	// server still runs it. The worker runs Pool x MaxPending handlers
	// unless its Options.Concurrency says otherwise; a call beyond what
	// every connection takes (a higher Concurrency, affinity crowding one
	// connection, or cancelled requests the server still runs) is
	// answered with an error at once. With 1, every log message and
	// request to the client an upstream sends is attributable to its call.
	MaxPending int
	// Affinity is AffinityNone (default) or AffinitySession.
	Affinity string
	// Prefix is PrefixNone (default), PrefixAlways or PrefixConditional;
	// PrefixName (default the group's name) and Separator (default "__")
	// make the prefix, both within [a-zA-Z0-9._-].
	Prefix, PrefixName, Separator string
	// Include and Exclude are path.Match patterns on the upstream's names
	// of tools and prompts: a name is registered when it matches an
	// Include pattern (or there are none) and no Exclude pattern.
	Include, Exclude []string
	// MaxMessage bounds one message from the upstream, in bytes (default
	// 4 MiB); a longer one ends the connection, which is started again.
	MaxMessage int
	// InitTimeout bounds the start and initialize of one connection
	// (default 30s); one that does not initialize in time is started
	// again with backoff, and the worker is not ready meanwhile.
	InitTimeout time.Duration
	// HangGrace is how long past its deadline a request may stay
	// unanswered before its connection is recycled (default 5s); one its
	// client cancelled sooner is not counted hung before then.
	HangGrace time.Duration
	// MinBackoff and MaxBackoff bound the wait before a connection that
	// failed or went is started again (default 250ms, doubling up to
	// 30s; back to the minimum after one that lived 30s).
	MinBackoff, MaxBackoff time.Duration
	// Version is the clientInfo version sent in initialize.
	Version string
}

func (c Config) withDefaults(group string) Config {
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.Pool <= 0 {
		c.Pool = 2
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 16
	}
	if c.Affinity == "" {
		c.Affinity = AffinityNone
	}
	if c.Prefix == "" {
		c.Prefix = PrefixNone
	}
	if c.PrefixName == "" {
		c.PrefixName = group
	}
	if c.Separator == "" {
		c.Separator = "__"
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 4 << 20
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 30 * time.Second
	}
	if c.HangGrace <= 0 {
		c.HangGrace = 5 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

// Host serves one worker group by forwarding its requests to an existing
// MCP server. Make it with New and run it with Run.
type Host struct {
	g      *workers.Group
	cfg    Config
	naming naming
	log    *slog.Logger
	pool   *pool
	names  atomic.Pointer[nameMap]
	// changed is signalled when the upstream says a list changed.
	changed chan struct{}
	// sse is set once auto-detection found the HTTP+SSE transport.
	sse atomic.Bool
	// listedBy is the connection that last said a list changed: the
	// lists are read from it (a process that added a tool has it; the
	// other pooled processes of a stateful server may not).
	listedBy atomic.Pointer[conn]

	// nc is Run's connection, on which resource updates are announced.
	nc *nats.Conn

	// spool is the pool of connections that speak the stateless revision
	// (stateless.go), started on the first call of a client that speaks
	// it; spoolCtx, spoolStarted and spoolStopped (under mu) and spoolRun
	// govern its life.
	spool        *pool
	spoolCtx     context.Context
	spoolRun     sync.WaitGroup
	spoolStarted bool
	spoolStopped bool

	mu       sync.Mutex
	synced   bool
	syncErr  error
	refused  []refusal
	stopping bool
}

// New returns a host of the group named group for the upstream cfg
// describes. It returns an error for a config that cannot work: neither
// or both of Command and URL, an unknown transport, affinity or prefix
// mode, or a separator, prefix or pattern outside what names allow.
func New(group string, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults(group)
	switch {
	case len(cfg.Command) == 0 && cfg.URL == "":
		return nil, errors.New("upstream: give a command or a URL")
	case len(cfg.Command) > 0 && cfg.URL != "":
		return nil, errors.New("upstream: give a command or a URL, not both")
	}
	switch cfg.Transport {
	case TransportAuto:
	case TransportStdio:
		if len(cfg.Command) == 0 {
			return nil, errors.New("upstream: transport stdio needs a command")
		}
	case TransportStreamable, TransportSSE:
		if cfg.URL == "" {
			return nil, fmt.Errorf("upstream: transport %s needs a URL", cfg.Transport)
		}
	default:
		return nil, fmt.Errorf("upstream: transport %q: want %s, %s, %s or %s", cfg.Transport, TransportAuto, TransportStdio, TransportStreamable, TransportSSE)
	}
	if cfg.Affinity != AffinityNone && cfg.Affinity != AffinitySession {
		return nil, fmt.Errorf("upstream: affinity %q: want %s or %s", cfg.Affinity, AffinityNone, AffinitySession)
	}
	n := naming{mode: cfg.Prefix, prefix: cfg.PrefixName, sep: cfg.Separator, include: cfg.Include, exclude: cfg.Exclude}
	if err := n.check(); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	h := &Host{g: workers.NewGroup(group), cfg: cfg, naming: n, changed: make(chan struct{}, 1), log: slog.Default()}
	h.pool = newPool(cfg.Pool, cfg.Affinity == AffinitySession, cfg.MinBackoff, cfg.MaxBackoff, h.dial, h.log)
	h.spool = newPool(cfg.Pool, false, cfg.MinBackoff, cfg.MaxBackoff, h.dialStateless, h.log)
	h.spool.fallback = true
	h.names.Store(&nameMap{})
	return h, nil
}

// Group is the worker group the host serves.
func (h *Host) Group() *workers.Group { return h.g }

// What names the upstream in logs and errors: its command line or URL.
func (h *Host) What() string {
	if h.cfg.URL != "" {
		return h.cfg.URL
	}
	return strings.Join(h.cfg.Command, " ")
}

// Ready reports nil once the group serves the upstream's definitions and
// a connection to it is up; otherwise an error saying why not, naming the
// upstream and its last failure (one that never initializes is told
// apart from one that is being started again).
func (h *Host) Ready() error {
	st := h.pool.state()
	h.mu.Lock()
	synced, syncErr, stopping := h.synced, h.syncErr, h.stopping
	h.mu.Unlock()
	switch {
	case stopping:
		return errors.New("draining")
	case !st.ever && st.lastErr != nil:
		return fmt.Errorf("upstream %q has not initialized (%d attempts): %v", h.What(), st.attempts, st.lastErr)
	case !st.ever:
		return fmt.Errorf("upstream %q is starting", h.What())
	case st.up == 0 && st.lastErr != nil:
		return fmt.Errorf("no connection to upstream %q is up (%d failed starts): %v", h.What(), st.attempts, st.lastErr)
	case st.up == 0:
		return fmt.Errorf("no connection to upstream %q is up; starting it again", h.What())
	case !synced && syncErr != nil:
		return fmt.Errorf("upstream %q: registering its definitions: %v", h.What(), syncErr)
	case !synced:
		return fmt.Errorf("upstream %q: registering its definitions", h.What())
	}
	return nil
}

// Refused lists what was not registered because another group has its
// name, as "tool "x" is registered by group y".
func (h *Host) Refused() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.refused))
	for i, r := range h.refused {
		out[i] = r.String()
	}
	return out
}

// Run starts the pool, waits for a connection to initialize, registers
// the upstream's definitions under the group and serves it (Group.Run
// with o; o.Ready is closed once it serves) until ctx ends; then the
// group drains and the connections close. o.Concurrency defaults to
// Config.Pool x Config.MaxPending, what the pool takes at once. The
// definitions are registered
// again when the upstream says a list changed. An upstream that never
// initializes keeps being started again, with backoff, and Ready says
// why; Run returns only when ctx ends, or with Group.Run's error. The
// caller owns nc.
func (h *Host) Run(ctx context.Context, nc *nats.Conn, o workers.Options) error {
	if o.Logger != nil {
		h.log = o.Logger
	}
	h.log = h.log.With("group", h.g.Name(), "upstream", h.What())
	h.pool.log = h.log // before the pool's goroutines start
	h.spool.log = h.log
	h.nc = nc
	if o.Concurrency <= 0 {
		// The worker pulls what the pool can take, and no more: calls
		// beyond it wait in the stream, where admission sees them.
		o.Concurrency = h.cfg.Pool * h.cfg.MaxPending
	}
	if err := h.g.SetRaw(workers.RawDefinitions{Handler: h.handle}); err != nil {
		return err
	}
	pctx, stopPool := context.WithCancel(context.WithoutCancel(ctx))
	pooled := make(chan struct{})
	go func() { defer close(pooled); h.pool.run(pctx) }()
	h.mu.Lock()
	h.spoolCtx = pctx
	h.mu.Unlock()
	// The connections close after the group has drained: calls running
	// at the drain need them.
	defer func() {
		stopPool()
		<-pooled
		h.mu.Lock()
		h.spoolStopped = true
		h.mu.Unlock()
		h.spoolRun.Wait()
	}()

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("group %s: opening JetStream: %w", h.g.Name(), err)
	}
	if _, err := streams.Ensure(ctx, js, o.Topology); err != nil {
		return fmt.Errorf("group %s: %w", h.g.Name(), err)
	}
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		return fmt.Errorf("group %s: opening bucket %s: %w", h.g.Name(), streams.RegistryBucket, err)
	}
	for !h.syncOnce(ctx, reg) {
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	ran := make(chan error, 1)
	go func() { ran <- h.g.Run(ctx, nc, o) }()
	for {
		select {
		case err := <-ran:
			h.mu.Lock()
			h.stopping = true
			h.mu.Unlock()
			return err
		case <-h.changed:
			// A burst of list changes is one sync.
			if sleep(ctx, 50*time.Millisecond) {
				select {
				case <-h.changed:
				default:
				}
				h.syncOnce(ctx, reg)
			}
		case <-ctx.Done():
			h.mu.Lock()
			h.stopping = true
			h.mu.Unlock()
			return <-ran
		}
	}
}

// syncOnce registers the upstream's definitions as a connection lists
// them, waiting for one to be up; it reports whether it did.
func (h *Host) syncOnce(ctx context.Context, reg jetstream.KeyValue) bool {
	k := h.listedBy.Swap(nil)
	if k == nil || k.err() != nil {
		var err error
		if k, err = h.pool.any(ctx); err != nil {
			return false
		}
	}
	sctx, cancel := context.WithTimeout(ctx, h.cfg.InitTimeout)
	defer cancel()
	err := h.sync(sctx, k, reg)
	h.mu.Lock()
	h.syncErr = err
	if err == nil {
		h.synced = true
	}
	h.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		h.log.Warn("registering the upstream's definitions", "err", err)
	}
	return err == nil
}

// onNotify takes the upstream's notifications that no call takes: a list
// change makes the host register the lists again; a resource update is
// announced to the gateways (workers.ResourceUpdated), which tell the
// sessions subscribed to it; a log message that belongs to no single call
// goes to the worker's log.
func (h *Host) onNotify(k *conn, method string, params json.RawMessage) {
	switch method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		h.listedBy.Store(k)
		select {
		case h.changed <- struct{}{}:
		default:
		}
	case "notifications/resources/updated":
		// To the gateways, which tell the sessions subscribed to it.
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(params, &p) == nil && p.URI != "" && h.nc != nil {
			if err := workers.ResourceUpdated(h.nc, p.URI); err != nil {
				h.log.Warn("relaying a resource update", "uri", p.URI, "err", err)
			}
		}
	case "notifications/message":
		h.log.Info("upstream log message (no single call in flight to relay it to)", "params", string(params))
	}
}

// open starts one connection over transport (not initialized), within
// ctx.
func (h *Host) open(ctx context.Context, transport string, log *slog.Logger) (*conn, error) {
	o := connOptions{log: log, maxPending: h.cfg.MaxPending, hangGrace: h.cfg.HangGrace, onNotify: h.onNotify}
	switch transport {
	case TransportStdio:
		c, proc, err := startProcess(h.cfg.Command, h.cfg.Env, h.cfg.Dir, h.cfg.MaxMessage, time.Second, log)
		if err != nil {
			return nil, err
		}
		return newConn(c, proc, o), nil
	case TransportStreamable:
		c, stop, err := dialStreamable(h.cfg.URL, h.cfg.Headers, h.cfg.MaxMessage, log)
		if err != nil {
			return nil, err
		}
		k := newConn(c, nil, o)
		k.closer = stop
		return k, nil
	case TransportSSE:
		c, stop, err := dialSSE(ctx, h.cfg.URL, h.cfg.Headers, h.cfg.MaxMessage)
		if err != nil {
			return nil, err
		}
		k := newConn(c, nil, o)
		k.closer = stop
		return k, nil
	}
	return nil, fmt.Errorf("upstream: transport %q", transport)
}

// dial starts and initializes one connection.
func (h *Host) dial(ctx context.Context, slot int) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.InitTimeout)
	defer cancel()
	log := h.log.With("slot", slot)
	try := func(transport string) (*conn, error) {
		k, err := h.open(ctx, transport, log)
		if err != nil {
			return nil, err
		}
		if err := k.initialize(ctx, h.cfg.Version, h.cfg.InitTimeout); err != nil {
			k.close(err)
			return nil, err
		}
		return k, nil
	}
	switch {
	case h.cfg.Transport != TransportAuto:
		return try(h.cfg.Transport)
	case len(h.cfg.Command) > 0:
		return try(TransportStdio)
	case h.sse.Load():
		return try(TransportSSE)
	}
	k, err := try(TransportStreamable)
	if err == nil || ctx.Err() != nil {
		return k, err
	}
	k, sseErr := try(TransportSSE)
	if sseErr != nil {
		return nil, fmt.Errorf("streamable HTTP: %v; HTTP+SSE: %v", err, sseErr)
	}
	h.log.Info("upstream speaks the HTTP+SSE transport (2024-11-05)")
	h.sse.Store(true)
	return k, nil
}
