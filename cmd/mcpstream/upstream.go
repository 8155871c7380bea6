package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/upstream"
)

// upstreamFlags are the worker's flags of a group that hosts an existing
// MCP server (package workers/upstream).
type upstreamFlags struct {
	group       string
	target      string
	transport   string
	pool        int
	env         lineList
	cwd         string
	headers     lineList
	prefix      string
	prefixName  string
	separator   string
	include     string
	exclude     string
	affinity    string
	maxPending  int
	maxMessage  int
	initTimeout time.Duration
	hangGrace   time.Duration
	share       string
}

// lineList is a repeatable flag whose values may hold commas (an
// environment entry, a header); its variable gives several values on
// separate lines.
type lineList []string

func (l *lineList) String() string { return strings.Join(*l, "\n") }

func (l *lineList) Set(v string) error {
	for _, s := range strings.Split(v, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func (f *upstreamFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.group, "group", "", "with --upstream: the worker group that serves the upstream server's tools, resources and prompts")
	fs.StringVar(&f.target, "upstream", "", "an existing MCP server for --group to host: a stdio command line ('npx -y @modelcontextprotocol/server-filesystem /data', words split as a shell would, nothing expanded) or an http(s) URL of its MCP endpoint")
	fs.StringVar(&f.transport, "upstream-transport", upstream.TransportAuto, "how to reach --upstream: auto (stdio for a command; Streamable HTTP for a URL, else the 2024-11-05 HTTP+SSE transport), stdio, streamable or sse")
	fs.IntVar(&f.pool, "upstream-pool", 0, "connections to the upstream each worker keeps (processes of a command, sessions of a URL), calls spread over them (default 2)")
	fs.Var(&f.env, "upstream-env", "NAME=value added to the environment of the upstream command, which is the worker's less its MCPSTREAM_* variables (repeatable; in the variable, one per line)")
	fs.StringVar(&f.cwd, "upstream-cwd", "", "working directory of the upstream command (default the worker's)")
	fs.Var(&f.headers, "upstream-header", "'Name: value' header sent with every request to an HTTP upstream, e.g. credentials (repeatable; in the variable, one per line)")
	fs.StringVar(&f.prefix, "upstream-prefix", upstream.PrefixNone, "prefix the upstream's tool and prompt names: none (names as the server has them; one another group has is refused), always, or conditional (only a name another group has)")
	fs.StringVar(&f.prefixName, "upstream-prefix-name", "", "the prefix of --upstream-prefix (default the group's name)")
	fs.StringVar(&f.separator, "upstream-separator", "__", "between the prefix and the name; names stay within [a-zA-Z0-9._-]")
	fs.StringVar(&f.include, "upstream-include", "", "comma-separated patterns (path.Match: *, ?, [a-z]) of the upstream's tool and prompt names to register (default all)")
	fs.StringVar(&f.exclude, "upstream-exclude", "", "comma-separated patterns of the upstream's tool and prompt names not to register")
	fs.StringVar(&f.affinity, "upstream-affinity", upstream.AffinityNone, "none: each call goes to the least busy pooled connection; session: a client session's calls all go to one pooled connection of the worker serving them (for stateful servers)")
	fs.IntVar(&f.maxPending, "upstream-max-pending", 0, "requests in flight on one upstream connection at most (default 16); 1 makes every log message and sampling or elicitation request of the upstream attributable to its call")
	fs.IntVar(&f.maxMessage, "upstream-max-message", 0, "bytes of one message from the upstream at most; a longer one restarts the connection (default 4 MiB)")
	fs.DurationVar(&f.initTimeout, "upstream-init-timeout", 0, "how long one upstream connection may take to start and initialize; one that does not is started again with backoff, and /readyz says why (default 30s)")
	fs.StringVar(&f.share, "partition-share", "", "I/N: this replica, number I of N (from 0), pulls only from the request partitions p with p mod N == I, so that each session (routed to one partition) reaches one replica: with --upstream-affinity session, one process of one worker; a share no live replica takes waits (default all partitions)")
	fs.DurationVar(&f.hangGrace, "upstream-hang-grace", 0, "how long a request cancelled at its deadline may stay unanswered before its upstream connection is recycled (default 5s)")
}

// partitionShare parses --partition-share.
func (f *upstreamFlags) partitionShare() (workers.PartitionShare, error) {
	if f.share == "" {
		return workers.PartitionShare{}, nil
	}
	i, n, ok := strings.Cut(f.share, "/")
	index, err1 := strconv.Atoi(strings.TrimSpace(i))
	of, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil || of < 1 || index < 0 || index >= of {
		return workers.PartitionShare{}, fmt.Errorf("--partition-share %q: want I/N with 0 <= I < N", f.share)
	}
	return workers.PartitionShare{Index: index, Of: of}, nil
}

// host returns the upstream host the flags describe, nil without
// --upstream.
func (f *upstreamFlags) host() (*upstream.Host, error) {
	if f.target == "" {
		if f.group != "" {
			return nil, errors.New("--group needs --upstream")
		}
		return nil, nil
	}
	if f.group == "" {
		return nil, errors.New("--upstream needs --group, the group that serves it")
	}
	cfg := upstream.Config{Transport: f.transport, Pool: f.pool, Env: f.env, Dir: f.cwd, Prefix: f.prefix,
		PrefixName: f.prefixName, Separator: f.separator, Include: splitList(f.include), Exclude: splitList(f.exclude),
		Affinity: f.affinity, MaxPending: f.maxPending, MaxMessage: f.maxMessage, InitTimeout: f.initTimeout,
		HangGrace: f.hangGrace, Version: gateway.Version}
	if strings.HasPrefix(f.target, "http://") || strings.HasPrefix(f.target, "https://") {
		cfg.URL = f.target
		cfg.Headers = http.Header{}
		for _, h := range f.headers {
			name, value, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return nil, fmt.Errorf("--upstream-header %q: want 'Name: value'", h)
			}
			cfg.Headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	} else {
		if len(f.headers) > 0 {
			return nil, errors.New("--upstream-header is for an HTTP upstream")
		}
		argv, err := upstream.SplitCommand(f.target)
		if err != nil {
			return nil, fmt.Errorf("--upstream: %w", err)
		}
		cfg.Command = argv
	}
	return upstream.New(f.group, cfg)
}

// startHost runs h on its own connection until the returned stop is
// called (it drains the group, then closes the upstream's connections).
// It prints a line once the group serves. failed receives Run's error if
// it returns before stop.
func startHost(ctx context.Context, h *upstream.Host, conn func(string) (*nats.Conn, error), o workers.Options, stdout io.Writer) (stop func(), failed <-chan error, _ error) {
	nc, err := conn(h.Group().Name())
	if err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan struct{})
	o.Ready = ready
	done, errs := make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(done)
		if err := h.Run(hctx, nc, o); err != nil {
			errs <- err
		}
	}()
	go func() {
		select {
		case <-ready:
			fmt.Fprintf(stdout, "mcpstream: worker group %s serving upstream %s: %s\n", h.Group().Name(), h.What(), strings.Join(h.Group().Tools(), ", "))
			for _, r := range h.Refused() {
				fmt.Fprintf(stdout, "mcpstream: worker group %s: not registered: %s\n", h.Group().Name(), r)
			}
		case <-done:
		}
	}()
	stop = func() {
		cancel()
		<-done
		_ = nc.Drain()
	}
	return stop, errs, nil
}
