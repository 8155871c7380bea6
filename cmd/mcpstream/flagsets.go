package main

import (
	"flag"
	"io"
	"strings"
	"time"

	"github.com/mcpstream/mcpstream/workers/examples"
)

// The flag sets of gateway, worker and provision are built here, apart
// from running the commands, so that the tests can compare them with the
// README's configuration table and with the commands of the deployment
// files. Each flag also comes from its variable (envName; parseEnv).

// gatewayCmd is what `mcpstream gateway`'s flags hold once parsed.
type gatewayCmd struct {
	common
	nats        natsFlags
	addr        string
	metricsAddr string
	mem         memoryFlag
	cores       procsFlag
	gw          gatewayFlags
}

// gatewayFlagSet returns the flag set of `mcpstream gateway`, its help
// written to stderr, and what its flags fill.
func gatewayFlagSet(stderr io.Writer) (*flag.FlagSet, *gatewayCmd) {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &gatewayCmd{}
	f.common.register(fs)
	f.nats.register(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "HTTP listen address of the MCP endpoint")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", metricsUsage)
	f.mem.register(fs, memoryUsage)
	f.cores.register(fs, false)
	f.gw.register(fs)
	withEnvUsage(fs)
	return fs, f
}

// workerCmd is what `mcpstream worker`'s flags hold once parsed.
type workerCmd struct {
	common
	nats        natsFlags
	examples    string
	concurrency int
	batch       int
	drain       time.Duration
	groupTarget time.Duration
	// loadInterval is how often each replica reports its load.
	loadInterval time.Duration
	metricsAddr  string
	mem          memoryFlag
	cores        procsFlag
	rec          recordFlags
	up           upstreamFlags
}

// workerFlagSet returns the flag set of `mcpstream worker`, its help
// written to stderr, and what its flags fill.
func workerFlagSet(stderr io.Writer) (*flag.FlagSet, *workerCmd) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &workerCmd{}
	f.common.register(fs)
	f.nats.register(fs)
	fs.StringVar(&f.examples, "examples", "demo", "comma-separated example groups to serve (with --upstream, none unless given); have: "+strings.Join(examples.Names(), ", "))
	fs.IntVar(&f.concurrency, "concurrency", 0, "handlers running at once per group (default 64)")
	fs.IntVar(&f.batch, "batch", 0, "envelopes buffered per partition pull (default 2 x concurrency / partitions, at least 4)")
	fs.DurationVar(&f.drain, "drain-timeout", 0, "on shutdown, how long the worker's running handlers may finish before they are cancelled and their envelopes handed back to another replica (default 25s)")
	fs.DurationVar(&f.groupTarget, "group-queue-target", 0, "the longest wait behind the group's backlog a call may expect before the gateways refuse it at once with 503 (default the gateways' --group-queue-target, 50ms)")
	fs.DurationVar(&f.loadInterval, "load-interval", 0, "how often each replica reports its load to the gateways, for their admission per group (default 100ms; negative: never, and the gateways admit without regard to the group's backlog)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", metricsUsage)
	f.mem.register(fs, memoryUsage)
	f.cores.register(fs, false)
	f.rec.register(fs)
	f.up.register(fs)
	withEnvUsage(fs)
	return fs, f
}

// provisionCmd is what `mcpstream provision`'s flags hold once parsed.
type provisionCmd struct {
	common
	nats         natsFlags
	maxAge       time.Duration
	maxBytes     int64
	sessionBytes int64
	dupWindow    time.Duration
	printPerms   bool
	groups       string
	gatewayID    string
}

// provisionFlagSet returns the flag set of `mcpstream provision`, its
// help written to stderr, and what its flags fill.
func provisionFlagSet(stderr io.Writer) (*flag.FlagSet, *provisionCmd) {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &provisionCmd{}
	f.common.register(fs)
	f.nats.register(fs)
	fs.DurationVar(&f.maxAge, "max-age", 0, "how long request streams keep messages for replay (default 1h)")
	fs.Int64Var(&f.maxBytes, "max-bytes", 0, "bytes each request stream holds at most, the oldest requests dropped to stay within it (default 256 MiB)")
	fs.Int64Var(&f.sessionBytes, "session-max-bytes", 0, "bytes the session bucket holds at most, the oldest sessions evicted to stay within it (default 1 GiB)")
	fs.DurationVar(&f.dupWindow, "duplicate-window", 0, "how long each request stream remembers a request's message id, to drop the copy a gateway publishes again when the stream's acknowledgement was lost or its leader changed; keep it at least the gateways' --call-timeout, the longest a gateway publishes a request again; the NATS server holds about 200 bytes a request for it, 100 MB at 8,000 calls/s; running provision again applies it to existing streams (default 60s, or --max-age if shorter)")
	fs.BoolVar(&f.printPerms, "print-permissions", false, "print, instead of provisioning, a nats-server authorization block with the narrowest permissions of each role's user (gateway, a worker per --groups, provision, replay), passwords read from variables MCPSTREAM_<USER>_PASSWORD; connects to nothing")
	fs.StringVar(&f.groups, "groups", "demo", "with --print-permissions: comma-separated worker groups, one user each, whose record streams the replay user may read")
	fs.StringVar(&f.gatewayID, "gateway-id", "", "with --print-permissions: the gateway user's gateway id (its --id), so that it receives only that gateway's replies (default any id)")
	withEnvUsage(fs)
	return fs, f
}

// configFlagSets are the flag sets of the commands configured by
// environment variables too, by command name.
func configFlagSets() map[string]*flag.FlagSet {
	gw, _ := gatewayFlagSet(io.Discard)
	w, _ := workerFlagSet(io.Discard)
	p, _ := provisionFlagSet(io.Discard)
	return map[string]*flag.FlagSet{"gateway": gw, "worker": w, "provision": p}
}
