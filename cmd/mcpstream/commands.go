package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address of the MCP endpoint")
	data := fs.String("data", "", "JetStream store directory (default a new temp dir, removed on exit)")
	natsListen := fs.String("nats-listen", "", "HOST:PORT to expose the embedded NATS server over TCP (port 0 picks one)")
	list := fs.String("examples", "demo", "comma-separated example groups to run in-process (0 or empty for none); have: "+strings.Join(examples.Names(), ", "))
	metricsAddr := metricsFlag(fs)
	var mem memoryFlag
	mem.register(fs, devMemoryUsage)
	var cores procsFlag
	cores.register(fs, true)
	var gw gatewayFlags
	gw.register(fs)
	var rec recordFlags
	rec.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := refuseNegative(fs, false); err != nil {
		return err
	}
	log, stopDebug, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer stopDebug()
	logFatalTo(ctx, log)
	if err := applyEnv(fs, os.LookupEnv, []string{"memory-limit", "adapt-procs"}); err != nil {
		return err
	}
	if _, err := mem.apply(log, stdout, devMemoryLimit, memoryEnv{os.LookupEnv, "/"}); err != nil {
		return err
	}
	defer cores.start(log, os.LookupEnv)()
	wopts := workers.Options{Logger: log, Topology: c.topology()}
	if err := rec.apply(&wopts); err != nil {
		return err
	}
	groups, err := examples.Parse(*list)
	if err != nil {
		return err
	}
	// The gateway's and the workers' metrics share one registry (their
	// names differ by subsystem), and one set of OpenTelemetry providers.
	obs, err := observe(ctx, "mcpstream", *metricsAddr, stdout)
	if err != nil {
		return err
	}
	defer obs.close()
	gwCfg, err := gw.config(ctx, log, c.topology(), obs)
	if err != nil {
		return err
	}
	reg := gwCfg.Metrics
	dir := *data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mcpstream-dev-"); err != nil {
			return fmt.Errorf("creating store dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir, Listen: *natsListen})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	if u := emb.ClientURL(); u != "" {
		fmt.Fprintf(stdout, "mcpstream: NATS listening on %s\n", u)
	}
	conn := func(group string) (*nats.Conn, error) {
		return emb.Connect(nats.Name("mcpstream-worker-"+group), nats.CustomInboxPrefix(streams.InboxPrefix(streams.RoleWorker, group)))
	}
	nc, err := emb.Connect(nats.Name("mcpstream-dev"))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := gw.fitMaxBody(&gwCfg, c.topology(), nc.MaxPayload(), log); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	if err := streams.Provision(ctx, js, c.topology()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mcpstream: JetStream store in %s\n", dir)

	wopts.Metrics, wopts.TracerProvider, wopts.Propagator = reg, obs.tel.Tracer, obs.tel.Propagator
	stopWorkers, _, err := startWorkers(ctx, groups, conn, wopts, stdout)
	if err != nil {
		return err
	}
	defer stopWorkers()
	gwc, err := emb.Connect(nats.Name("mcpstream-gateway"), nats.CustomInboxPrefix(streams.InboxPrefix(streams.RoleGateway, "")))
	if err != nil {
		return err
	}
	defer gwc.Close()
	return serveGateway(ctx, gwc, gwCfg, *addr, gw.retireDelay, gw.drain(), obs, stdout, stopWorkers, nil)
}

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := gatewayFlagSet(stderr)
	if err := parseEnv(fs, args, os.LookupEnv, nil); err != nil {
		return err
	}
	if err := refuseNegative(fs, true); err != nil {
		return err
	}
	c, nf, gw := f.common, f.nats, f.gw
	log, stopDebug, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer stopDebug()
	logFatalTo(ctx, log)
	if _, err := f.mem.apply(log, stdout, 0, memoryEnv{os.LookupEnv, "/"}); err != nil {
		return err
	}
	defer f.cores.start(log, os.LookupEnv)()
	obs, err := observe(ctx, "mcpstream-gateway", f.metricsAddr, stdout)
	if err != nil {
		return err
	}
	defer obs.close()
	cfg, err := gw.config(ctx, log, c.topology(), obs)
	if err != nil {
		return err
	}
	nc, err := connect(nf, "mcpstream-gateway", streams.InboxPrefix(streams.RoleGateway, ""), os.Getenv, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := gw.fitMaxBody(&cfg, c.topology(), nc.MaxPayload(), log); err != nil {
		return err
	}
	lost := make(chan error, 1)
	watchClosed(nc, lost)
	alive := closedCheck(func() []*nats.Conn { return []*nats.Conn{nc} })
	obs.alive.Store(&alive)
	return serveGateway(ctx, nc, cfg, f.addr, gw.retireDelay, gw.drain(), obs, stdout, nil, lost)
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := workerFlagSet(stderr)
	if err := parseEnv(fs, args, os.LookupEnv, nil); err != nil {
		return err
	}
	if err := refuseNegative(fs, true); err != nil {
		return err
	}
	c, nf, rec := f.common, f.nats, f.rec
	log, stopDebug, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer stopDebug()
	logFatalTo(ctx, log)
	if _, err := f.mem.apply(log, stdout, 0, memoryEnv{os.LookupEnv, "/"}); err != nil {
		return err
	}
	defer f.cores.start(log, os.LookupEnv)()
	opts := workers.Options{Logger: log, Topology: c.topology(), Concurrency: f.concurrency, Batch: f.batch, DrainTimeout: f.drain,
		QueueTarget: f.groupTarget, LoadInterval: f.loadInterval}
	if err := rec.apply(&opts); err != nil {
		return err
	}
	host, err := f.up.host()
	if err != nil {
		return err
	}
	if opts.Share, err = f.up.partitionShare(); err != nil {
		return err
	}
	list := f.examples
	if host != nil && !flagSet(fs, "examples") {
		list = "" // hosting an upstream, no example unless asked for
	}
	groups, err := examples.Parse(list)
	if err != nil {
		return err
	}
	if len(groups) == 0 && host == nil {
		return errors.New("no worker groups: name at least one with --examples, or host a server with --upstream")
	}
	obs, err := observe(ctx, "mcpstream-worker", f.metricsAddr, stdout)
	if err != nil {
		return err
	}
	defer obs.close()
	// Each connection closed for good (watchClosed) ends the worker, and
	// fails /healthz meanwhile.
	lost := make(chan error, 1)
	var connsMu sync.Mutex
	var conns []*nats.Conn
	conn := func(group string) (*nats.Conn, error) {
		nc, err := connect(nf, "mcpstream-worker-"+group, streams.InboxPrefix(streams.RoleWorker, group), os.Getenv, log)
		if err != nil {
			return nil, err
		}
		watchClosed(nc, lost)
		connsMu.Lock()
		conns = append(conns, nc)
		connsMu.Unlock()
		return nc, nil
	}
	alive := closedCheck(func() []*nats.Conn {
		connsMu.Lock()
		defer connsMu.Unlock()
		return append([]*nats.Conn(nil), conns...)
	})
	obs.alive.Store(&alive)
	opts.Metrics, opts.TracerProvider, opts.Propagator = obs.reg, obs.tel.Tracer, obs.tel.Propagator
	var hostFailed <-chan error
	stopHost := func() {}
	if host != nil {
		// Started first, and not waited for: an upstream that does not
		// initialize keeps the worker unready, saying why, until it does.
		if stopHost, hostFailed, err = startHost(ctx, host, conn, opts, stdout); err != nil {
			return err
		}
		notReady := func() error { return host.Ready() }
		obs.ready.Store(&notReady)
	}
	stop, ready, err := startWorkers(ctx, groups, conn, opts, stdout)
	if err != nil {
		stopHost()
		return err
	}
	allReady := func() error {
		if host != nil {
			if err := host.Ready(); err != nil {
				return err
			}
		}
		return ready()
	}
	obs.ready.Store(&allReady)
	select {
	case <-ctx.Done():
	case err := <-hostFailed:
		stop()
		stopHost()
		return err
	case err := <-lost:
		stop()
		stopHost()
		return err
	}
	fmt.Fprintln(stdout, "mcpstream: draining workers")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); stop() }()
	go func() { defer wg.Done(); stopHost() }()
	wg.Wait()
	return nil
}

// flagSet reports whether the flag named name was given (on the command
// line or by its variable).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := provisionFlagSet(stderr)
	if err := parseEnv(fs, args, os.LookupEnv, nil); err != nil {
		return err
	}
	c, nf := f.common, f.nats
	if f.printPerms {
		return printPermissions(stdout, splitList(f.groups), f.gatewayID, c.topology().WithDefaults().Partitions)
	}
	log, stopDebug, err := c.logger(stderr)
	if err != nil {
		return err
	}
	defer stopDebug()
	logFatalTo(ctx, log)
	nc, err := connect(nf, "mcpstream-provision", streams.InboxPrefix(streams.RoleProvisioner, ""), os.Getenv, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	recorded := false
	t, err := provisionRetrying(ctx, js, log, func(ctx context.Context) (streams.Topology, error) {
		rec, ok, err := streams.RecordedTopology(ctx, js)
		if err != nil {
			return rec, err
		}
		recorded = ok
		t := provisionTopology(fs, f, rec)
		if err := t.Validate(); err != nil {
			return t, fmt.Errorf("%w (--duplicate-window at most --max-age)", err)
		}
		return t, nil
	})
	if err != nil {
		return err
	}
	was := "new"
	if recorded {
		was = "updated; flags not given kept their recorded values"
	}
	fmt.Fprintf(stdout, "mcpstream: provisioned (%s) %d request streams (max age %v, %d bytes each, duplicate window %v, %d replicas), %s, buckets %s, %s, %s on %s\n",
		was, t.Partitions, t.MaxAge, t.MaxBytes, t.DuplicateWindow, t.Replicas, streams.DLQStream, streams.RegistryBucket, streams.SessionBucket, streams.ResultBucket, nc.ConnectedUrlRedacted())
	return nil
}

// provisionTopology is the topology `provision` applies: t, the recorded
// one (or the zero Topology before the first run), with the flags given
// on the command line or in their variables in place of its values, and
// defaults for the rest. Running provision again to change one setting
// leaves the others as they are, where starting from the flags' defaults
// would reset every one not given (a tuned --max-bytes back to 256 MiB,
// --replicas 3 back to 1).
func provisionTopology(fs *flag.FlagSet, f *provisionCmd, t streams.Topology) streams.Topology {
	window := false
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "partitions":
			t.Partitions = f.common.partitions
		case "replicas":
			t.Replicas = f.common.replicas
		case "ack-wait":
			t.AckWait = f.common.ackWait
		case "max-age":
			t.MaxAge = f.maxAge
		case "max-bytes":
			t.MaxBytes = f.maxBytes
		case "session-max-bytes":
			t.SessionMaxBytes = f.sessionBytes
		case "duplicate-window":
			t.DuplicateWindow, window = f.dupWindow, true
		}
	})
	if t.MaxAge > 0 && t.DuplicateWindow > t.MaxAge && !window {
		// A recorded window longer than a --max-age now given: cut to it,
		// as the default is (a stream cannot remember ids longer).
		t.DuplicateWindow = t.MaxAge
	}
	return t.WithDefaults()
}

// printPermissions writes the authorization block of the users of every
// role, a worker user per group, for partitions request streams, to w. It
// returns an error for an invalid group or gateway id.
func printPermissions(w io.Writer, groups []string, gatewayID string, partitions int) error {
	var users []streams.User
	add := func(r streams.Role, o streams.PermissionOptions) error {
		u, err := streams.RoleUser(r, o)
		if err != nil {
			return fmt.Errorf("--print-permissions: %w", err)
		}
		users = append(users, u)
		return nil
	}
	if err := add(streams.RoleGateway, streams.PermissionOptions{GatewayID: gatewayID, Partitions: partitions}); err != nil {
		return err
	}
	for _, g := range groups {
		if err := add(streams.RoleWorker, streams.PermissionOptions{Group: g, Partitions: partitions}); err != nil {
			return err
		}
	}
	for _, r := range []streams.Role{streams.RoleProvisioner, streams.RoleReplay} {
		if err := add(r, streams.PermissionOptions{Partitions: partitions, Groups: groups}); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, streams.AuthorizationConfig(users)); err != nil {
		return fmt.Errorf("writing permissions: %w", err)
	}
	return nil
}

// provisionWait bounds how long provision retries a transient failure,
// provisionAttempt each try: a cluster without a meta leader does not
// answer, and the next try may reach one that does.
const (
	provisionWait    = time.Minute
	provisionAttempt = 10 * time.Second
)

// provisionRetrying provisions the topology that topology returns (from
// the recorded one, which is read again on each try), and tries again,
// with backoff for up to provisionWait, while the failure is transient
// (streams.Retryable) or the cluster has fewer nodes up than the replicas
// (streams.IsNoPeers): a cluster whose nodes have just come up may still
// be electing the leaders that answer stream creations and registry
// reads, or not yet count every node. Provisioning is idempotent. It
// returns the topology provisioned.
func provisionRetrying(ctx context.Context, js jetstream.JetStream, log *slog.Logger, topology func(context.Context) (streams.Topology, error)) (streams.Topology, error) {
	ctx, cancel := context.WithTimeout(ctx, provisionWait)
	defer cancel()
	wait := 250 * time.Millisecond
	for {
		actx, cancelAttempt := context.WithTimeout(ctx, provisionAttempt)
		t, err := topology(actx)
		if err == nil {
			err = streams.Provision(actx, js, t)
		}
		cancelAttempt()
		if err == nil || !streams.Retryable(err) && !streams.IsNoPeers(err) || ctx.Err() != nil {
			return t, err
		}
		log.Warn("provisioning failed, trying again", "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return t, err
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// gatewayFlags are the gateway's tuning and authentication flags, shared
// by dev and gateway.
type gatewayFlags struct {
	id          string
	callTimeout time.Duration
	maxBody     int64
	maxBodyMem  int64
	origins     string
	apiKeys     string
	apiScopes   string
	// per-principal rate limit
	principalRate  float64
	principalBurst int
	principalHold  time.Duration
	// hostile clients (gateway/hostile.go)
	maxConns                                int
	headerTimeout, bodyTimeout, idleTimeout time.Duration
	minBodyRate                             int64
	principal                               string

	maxInFlight          int
	queueTarget          time.Duration
	groupQueueTarget     time.Duration
	cpuQueueTarget       time.Duration
	maxSessionInFlight   int
	maxPrincipalInFlight int
	maxEventStreams      int
	maxBatch             int
	batchConcurrency     int
	retireDelay          time.Duration
	drainTimeout         time.Duration

	jwksURL        string
	issuer         string
	audience       string
	scopes         string
	principalClaim string
	requireATJWT   bool
	resource       string
	authServers    listFlag
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.id, "id", "", "gateway id; replies arrive on mcp.reply.<id> (default random)")
	fs.DurationVar(&f.callTimeout, "call-timeout", 0, "deadline of a request routed to a worker (default 60s)")
	fs.Int64Var(&f.maxBody, "max-body", 0, "largest request body in bytes (default 4 MiB)")
	fs.Int64Var(&f.maxBodyMem, "max-body-memory", 0, "bytes of request bodies held at once, being read or being served; beyond it 503 with Retry-After (default 1/4 of the Go memory limit, else 1 GiB)")
	fs.IntVar(&f.maxConns, "max-conns", 0, "connections open at once at most, event streams included; beyond it a connection gets 503 with Retry-After at once (default 3/4 of the open-file limit)")
	fs.DurationVar(&f.headerTimeout, "header-timeout", 0, "time a client may take to send a request's headers (default 10s)")
	fs.DurationVar(&f.bodyTimeout, "body-timeout", 0, "time a client may take to send a request's body, plus what --min-body-rate allows for the bytes sent; slower gets 408 (default 10s)")
	fs.Int64Var(&f.minBodyRate, "min-body-rate", 0, "bytes a second of a request's body that extend --body-timeout (default 16384)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, "how long a kept-alive connection may wait for its next request (default 120s)")
	fs.StringVar(&f.origins, "allowed-origins", "", "comma-separated Origin values accepted besides loopback ones")
	fs.IntVar(&f.maxInFlight, "max-inflight", 0, "calls waiting on workers in this gateway at most; below it the limit adapts to queueing (default 10000)")
	fs.DurationVar(&f.queueTarget, "queue-target", 0, "queueing a call may see before the gateway lowers its in-flight limit and refuses the excess with 503 (default 10ms)")
	fs.DurationVar(&f.groupQueueTarget, "group-queue-target", 0, "the longest wait behind a worker group's backlog a call may expect (estimated from the group's load reports); beyond it the call is refused at once with 503, Retry-After and -32000 naming the group (default 50ms; a group or tool may set its own; negative: no admission per group)")
	fs.DurationVar(&f.cpuQueueTarget, "cpu-queue-target", 0, "how long goroutines may wait for the gateway's CPU (p99 over 100ms) before it halves its in-flight limit, down to 8 per core, and refuses the excess with 503; off by default, as it also sheds many clients that saturate the CPU without overloading it (7ms is a good value)")
	fs.IntVar(&f.maxSessionInFlight, "max-session-inflight", 0, "calls one session may have waiting on workers (default 64)")
	fs.IntVar(&f.maxPrincipalInFlight, "max-principal-inflight", 0, "calls one principal may have waiting on workers, over all its sessions on this gateway (default 256)")
	fs.Float64Var(&f.principalRate, "principal-rate", 0, "requests a second one principal may make of this gateway (with --principal-header, --jwks-url or --api-keys); a request beyond it is held up to --principal-rate-hold, then served or refused with 429 and Retry-After (default no limit)")
	fs.IntVar(&f.principalBurst, "principal-burst", 0, "requests one principal may make at once within --principal-rate (default the rate rounded up)")
	fs.DurationVar(&f.principalHold, "principal-rate-hold", 0, "how long a request over --principal-rate is held: served if its token comes within it, else refused with 429 after it, so a client that ignores Retry-After is slowed down, not answered at once (default 1s; negative: refuse at once)")
	fs.IntVar(&f.maxEventStreams, "max-event-streams", 0, "event streams (session GET, subscriptions/listen, HTTP+SSE) open on this gateway at most; a request opening one beyond it is refused with 503 (default 20000)")
	fs.IntVar(&f.maxBatch, "max-batch", 0, "messages one JSON-RPC batch may hold (2025-03-26 sessions and HTTP+SSE); a larger batch is refused whole with 400 and -32600 before any of it runs (default 100)")
	fs.IntVar(&f.batchConcurrency, "batch-concurrency", 0, "requests of one JSON-RPC batch served at once; the next waits for one to be done (default 8)")
	fs.DurationVar(&f.retireDelay, "retire-delay", 0, "on SIGTERM, how long the gateway keeps serving with /readyz failing before it drains, for load balancers to stop sending it clients (e.g. 5s behind a Kubernetes Service); a second signal cuts it short")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 0, "on shutdown, how long the gateway waits for the calls in flight to be answered before it closes and drops them (default --call-timeout, so that a call in flight can finish)")
	fs.StringVar(&f.apiKeys, "api-keys", "", "file of API keys, one a line: a principal, the hex SHA-256 of its key and the scopes it grants (made by mcpstream apikey create); clients present the key as a bearer token (Authorization: Bearer <key>) and are that principal; the file is read again within a second or two of a change, so a revoked key is refused without a restart")
	fs.StringVar(&f.apiScopes, "api-key-scopes", "", "comma-separated scopes every API key must grant (its scopes in --api-keys); others get 403 insufficient_scope, as with --jwt-scopes")
	fs.StringVar(&f.principal, "principal-header", "", "header naming the authenticated principal, set by an authenticating proxy in front (sessions are bound to it; per-principal in-flight caps apply)")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "validate OAuth bearer tokens (JWTs) signed by the keys of this JWK Set URL (https, or http on loopback); the token's subject is the principal")
	fs.StringVar(&f.issuer, "jwt-issuer", "", "issuer (iss) tokens must name; required with --jwks-url")
	fs.StringVar(&f.audience, "jwt-audience", "", "audience (aud) tokens must include (default --resource-url)")
	fs.StringVar(&f.scopes, "jwt-scopes", "", "comma-separated scopes every token must grant (scope or scp claim); others get 403 insufficient_scope")
	fs.StringVar(&f.principalClaim, "jwt-principal-claim", "", "string claim naming the principal (default sub)")
	fs.BoolVar(&f.requireATJWT, "jwt-require-at-jwt", false, "accept only tokens whose typ header is at+jwt (RFC 9068 JWT access tokens), so that other JWTs of the issuer for this audience, such as ID tokens, are refused (off by default: many authorization servers type access tokens JWT)")
	fs.StringVar(&f.resource, "resource-url", "", "canonical URL of the MCP endpoint as clients reach it (the OAuth resource); required with --jwks-url")
	fs.Var(&f.authServers, "auth-server", "authorization server issuer URL named in the protected resource metadata (repeatable or comma-separated; default --jwt-issuer)")
}

// config builds the gateway's configuration. With --jwks-url it fetches
// the key set, with --api-keys it reads the key file (the goroutine that
// refreshes either lives as long as ctx); it returns an error for
// conflicting or incomplete authentication flags, or a key set or key
// file that cannot be loaded.
func (f *gatewayFlags) config(ctx context.Context, log *slog.Logger, t streams.Topology, obs *observability) (gateway.Config, error) {
	cfg := gateway.Config{ID: f.id, Topology: t, CallTimeout: f.callTimeout, MaxBody: f.maxBody, MaxBodyMemory: f.maxBodyMem, Logger: log,
		MaxConns: f.maxConns, HeaderTimeout: f.headerTimeout, BodyTimeout: f.bodyTimeout, MinBodyRate: f.minBodyRate, IdleTimeout: f.idleTimeout,
		PrincipalHeader: f.principal, AllowedOrigins: splitList(f.origins),
		MaxInFlight: f.maxInFlight, QueueTarget: f.queueTarget, GroupQueueTarget: f.groupQueueTarget, CPUQueueTarget: f.cpuQueueTarget, MaxSessionInFlight: f.maxSessionInFlight,
		MaxPrincipalInFlight: f.maxPrincipalInFlight, MaxEventStreams: f.maxEventStreams, MaxBatch: f.maxBatch, BatchConcurrency: f.batchConcurrency,
		PrincipalRate: f.principalRate, PrincipalBurst: f.principalBurst, PrincipalRateHold: f.principalHold}
	if obs != nil {
		cfg.Metrics = obs.reg
		cfg.TracerProvider, cfg.MeterProvider, cfg.Propagator = obs.tel.Tracer, obs.tel.Meter, obs.tel.Propagator
	}
	if (f.principalRate != 0 || f.principalBurst != 0 || f.principalHold != 0) && f.principal == "" && f.jwksURL == "" && f.apiKeys == "" {
		return cfg, errors.New("--principal-rate, --principal-burst and --principal-rate-hold need a principal: --principal-header, --jwks-url or --api-keys")
	}
	switch {
	case f.apiKeys != "":
		if f.principal != "" || f.jwksURL != "" {
			return cfg, errors.New("--api-keys excludes --principal-header and --jwks-url: the principal comes from one of them")
		}
		// The goroutine that follows the file lives as long as ctx, as the
		// JWT's key set refresh does.
		keys, err := auth.WatchAPIKeys(ctx, f.apiKeys, auth.APIKeyOptions{RequiredScopes: splitList(f.apiScopes), Logger: log})
		if err != nil {
			return cfg, err
		}
		cfg.Auth = keys
	case f.apiScopes != "":
		return cfg, errors.New("--api-key-scopes needs --api-keys")
	}
	if f.jwksURL == "" {
		if f.issuer != "" || f.audience != "" || f.scopes != "" || f.principalClaim != "" || f.requireATJWT || f.resource != "" || len(f.authServers) > 0 {
			return cfg, errors.New("--jwt-issuer, --jwt-audience, --jwt-scopes, --jwt-principal-claim, --jwt-require-at-jwt, --resource-url and --auth-server need --jwks-url")
		}
		return cfg, nil
	}
	switch {
	case f.principal != "":
		return cfg, errors.New("--principal-header and --jwks-url exclude each other: the principal comes from the proxy's header or from the token")
	case f.issuer == "":
		return cfg, errors.New("--jwks-url needs --jwt-issuer")
	case f.resource == "":
		return cfg, errors.New("--jwks-url needs --resource-url, the canonical URL of the MCP endpoint as clients reach it")
	}
	audience := f.audience
	if audience == "" {
		audience = f.resource
	}
	jwt, err := auth.NewJWT(ctx, auth.JWTOptions{JWKSURL: f.jwksURL, Issuer: f.issuer, Audience: audience,
		RequiredScopes: splitList(f.scopes), PrincipalClaim: f.principalClaim, RequireAccessTokenType: f.requireATJWT, Logger: log})
	if err != nil {
		return cfg, err
	}
	cfg.Auth = jwt
	cfg.ResourceMetadata = auth.ResourceMetadata{Resource: f.resource, AuthorizationServers: f.authServers}
	return cfg, nil
}

// recordFlags are the flags of recorded results, shared by dev and worker.
type recordFlags struct {
	results  bool
	maxAge   time.Duration
	maxBytes int64
}

func (f *recordFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.results, "record-results", false, "record every answer of the worker groups, result or error with the handler's run time, in each group's stream MCP_RESULTS_<group>, for replay --results; published without waiting, so calls do not wait on it (off by default)")
	fs.DurationVar(&f.maxAge, "record-max-age", 0, "with --record-results, how long a group's record stream keeps a record (default the request streams' max age, 1h unless provisioned otherwise)")
	fs.Int64Var(&f.maxBytes, "record-max-bytes", 0, "with --record-results, bytes a group's record stream holds at most, the oldest records dropped to stay within it (default 64 MiB)")
}

// apply sets o's recording options; it returns an error for limits given
// without --record-results.
func (f *recordFlags) apply(o *workers.Options) error {
	if !f.results && (f.maxAge != 0 || f.maxBytes != 0) {
		return errors.New("--record-max-age and --record-max-bytes need --record-results")
	}
	o.RecordResults, o.RecordMaxAge, o.RecordMaxBytes = f.results, f.maxAge, f.maxBytes
	return nil
}

// startWorkers runs each group on its own connection, conn(group), and waits until all are
// serving. The returned stop drains them: it stops pulling, waits for
// running handlers and closes the connections; ready reports nil while
// every group serves and its connection is up.
func startWorkers(ctx context.Context, groups []*workers.Group, conn func(string) (*nats.Conn, error), o workers.Options, stdout io.Writer) (stop func(), ready func() error, _ error) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var conns []*nats.Conn
	ready = func() error {
		if wctx.Err() != nil {
			return errors.New("draining")
		}
		for _, nc := range conns {
			if st := nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("nats %s", st)
			}
		}
		return nil
	}
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		for _, nc := range conns {
			_ = nc.Drain()
		}
	})
	errs := make(chan error, len(groups))
	for _, g := range groups {
		nc, err := conn(g.Name())
		if err != nil {
			stop()
			return nil, nil, err
		}
		conns = append(conns, nc)
		ready := make(chan struct{})
		gopts := o
		gopts.Ready = ready
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(wctx, nc, gopts); err != nil {
				errs <- err
			}
		}()
		select {
		case <-ready:
			fmt.Fprintf(stdout, "mcpstream: worker group %s serving %s\n", g.Name(), strings.Join(g.Tools(), ", "))
		case err := <-errs:
			stop()
			return nil, nil, err
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		}
	}
	return stop, ready, nil
}

// shutdownGrace bounds the HTTP server's shutdown once the gateway's has
// answered every call: the writes of those answers.
const shutdownGrace = 5 * time.Second

// serveGateway serves the MCP endpoint until ctx ends, then retires the
// gateway (its readiness fails) for retireDelay, or until a second
// interrupt or SIGTERM, and drains: event streams
// close, in-flight requests finish (up to drain), then beforeClose
// runs (dev stops its workers there) and the gateway closes. The metrics
// endpoint's /readyz follows the gateway's. An error on lost (nc closed
// for good: watchClosed) closes the gateway at once and is returned.
func serveGateway(ctx context.Context, nc *nats.Conn, cfg gateway.Config, addr string, retireDelay, drain time.Duration, obs *observability,
	stdout io.Writer, beforeClose func(), lost <-chan error) error {
	gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	gw, err := gateway.New(gctx, nc, cfg)
	cancel()
	if err != nil {
		return err
	}
	ready := gw.Ready
	obs.ready.Store(&ready)
	mux := http.NewServeMux()
	gw.Mount(mux)
	srv := &http.Server{Handler: mux}
	gw.ConfigureServer(srv) // deadlines for slow clients
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		gw.Close()
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ln = gw.LimitListener(ln) // at most Config.MaxConns connections
	fmt.Fprintf(stdout, "mcpstream: gateway %s: MCP endpoint http://%s%s\n", gw.ID(), ln.Addr(), gateway.MCPPath)
	fmt.Fprintf(stdout, "mcpstream: gateway %s: HTTP+SSE endpoint (2024-11-05) http://%s%s\n", gw.ID(), ln.Addr(), gateway.SSEPath)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		gw.Close()
		return fmt.Errorf("serving HTTP: %w", err)
	case err := <-lost:
		_ = srv.Close()
		gw.Close()
		return err
	case <-ctx.Done():
	}
	gw.Retire()
	if retireDelay > 0 {
		// Load balancers see /readyz fail meanwhile; a second signal cuts
		// the delay short.
		again, stopAgain := nextSignal(ctx)
		fmt.Fprintf(stdout, "mcpstream: gateway %s not ready, draining in %s\n", gw.ID(), retireDelay)
		select {
		case <-time.After(retireDelay):
		case <-again:
		}
		stopAgain()
	}
	fmt.Fprintf(stdout, "mcpstream: draining gateway %s (%d in flight)\n", gw.ID(), gw.InFlight())
	// drain bounds the wait for the calls in flight; at its end the
	// gateway answers those still waiting (-32000, or 503), and the HTTP
	// server then has only those answers' writes to wait for.
	dctx, dcancel := context.WithTimeout(context.Background(), drain)
	defer dcancel()
	_ = gw.Shutdown(dctx)
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if beforeClose != nil {
		beforeClose()
	}
	gw.Close()
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("draining NATS connection: %w", err)
	}
	fmt.Fprintln(stdout, "mcpstream: stopped")
	return nil
}
