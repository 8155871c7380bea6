package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/streams"
)

// joined is the http floor's handler and a pipeline in one process, with
// none of mcpstream's logic between them: a tools/call is published to
// the pipeline's streams and answered when its reply comes back, as
// mcpstream's gateway does, but with no session, envelope, admission or
// schema. What it costs over http + jetstream is what joining the parts
// costs (goroutine hand-offs between net/http and the NATS connections),
// and what mcpstream costs over it is mcpstream's own logic.
//
// With core set (the joined-core part), the stream is taken out: the
// request goes to the worker on core NATS (corePipeline), stored,
// acknowledged and redelivered by nothing. What joined costs over it is
// what the stored, at-least-once request costs in the joined form.
type joined struct {
	p       *pipeline     // the stored form's, or nil
	core    *corePipeline // the core form's, or nil
	seq     atomic.Uint64
	waiters sync.Map // call number (uint64) -> chan struct{}
	body    []byte
}

// startJoined starts a pipeline with its store in dir (with core, a
// corePipeline) and routes its replies; close stops it.
func startJoined(ctx context.Context, dir string, core bool) (*joined, error) {
	j := &joined{body: make([]byte, envelopeSize)}
	var gc *nats.Conn
	if core {
		c, err := startCorePipeline(dir)
		if err != nil {
			return nil, err
		}
		j.core, gc = c, c.gc
	} else {
		p, err := startPipeline(ctx, dir)
		if err != nil {
			return nil, err
		}
		j.p, gc = p, p.gc
	}
	if _, err := gc.Subscribe("floor.reply.*", j.route); err != nil {
		j.close()
		return nil, err
	}
	return j, nil
}

// route hands a reply to the call its subject's last token numbers.
func (j *joined) route(m *nats.Msg) {
	n, err := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
	if w, ok := j.waiters.Load(n); err == nil && ok {
		w.(chan struct{}) <- struct{}{}
	}
}

// call publishes one request and waits for its reply.
func (j *joined) call(ctx context.Context) error {
	n := j.seq.Add(1)
	id := strconv.FormatUint(n, 10)
	w := make(chan struct{}, 1)
	j.waiters.Store(n, w)
	defer j.waiters.Delete(n)
	var err error
	if j.core != nil {
		err = j.core.publish(n, "floor.reply."+id, j.body)
	} else {
		err = j.p.publish("joined-"+id, "floor.reply."+id, "floor.ack."+id, j.body)
	}
	if err != nil {
		return err
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no reply in 30s")
	}
}

func (j *joined) close() {
	if j.core != nil {
		j.core.close()
	}
	if j.p != nil {
		j.p.close()
	}
}

// refusals is an error if the stream refused any publish (none in the
// core form, which has no stream).
func (j *joined) refusals() error {
	if j.p == nil {
		return nil
	}
	return j.p.refusals()
}

// corePipeline is the pipeline's message pattern with the stream taken
// out: the gateway's connection publishes a request of envelopeSize bytes
// on core NATS, to one of as many subjects as dev has partitions, each
// with a queue subscription of the worker's connection, which answers
// replySize bytes to the request's reply subject. Nothing stores,
// acknowledges or redelivers a request: a request the worker never gets
// is lost, as it would be in mcpstream without JetStream.
type corePipeline struct {
	emb        *streams.Embedded
	gc, wc     *nats.Conn
	partitions int
}

// coreSubject is the subject of partition i's requests in the core form.
func coreSubject(i int) string { return "floor.core." + strconv.Itoa(i) }

// startCorePipeline starts an embedded server (its store, unused, in
// dir) and the worker's subscriptions; close stops it.
func startCorePipeline(dir string) (_ *corePipeline, err error) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		return nil, err
	}
	c := &corePipeline{emb: emb, partitions: streams.Topology{}.WithDefaults().Partitions}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.wc, err = emb.Connect(nats.Name("floor-worker")); err != nil {
		return nil, err
	}
	reply := make([]byte, replySize)
	for i := range c.partitions {
		if _, err := c.wc.QueueSubscribe(coreSubject(i), "floor", func(m *nats.Msg) { _ = c.wc.Publish(m.Reply, reply) }); err != nil {
			return nil, fmt.Errorf("subscribing to partition %d: %w", i, err)
		}
	}
	// The subscriptions must reach the server before the first request.
	if err := c.wc.Flush(); err != nil {
		return nil, err
	}
	c.gc, err = emb.Connect(nats.Name("floor-gateway"))
	return c, err
}

// publish sends call n's request, answered on replyTo.
func (c *corePipeline) publish(n uint64, replyTo string, body []byte) error {
	return c.gc.PublishRequest(coreSubject(int(n%uint64(c.partitions))), replyTo, body)
}

func (c *corePipeline) close() {
	for _, nc := range []*nats.Conn{c.gc, c.wc} {
		if nc != nil {
			nc.Close()
		}
	}
	c.emb.Shutdown()
}

// serveJoined is the harness re-executed as the joined part's server: it
// serves rpcHandler, its calls through a pipeline stored in --data (with
// --core, the joined-core part's, on core NATS), on /mcp at --addr,
// prints "listening on ADDR", and stops on SIGINT or SIGTERM. With
// --debug-addr it serves CPU profiles there, as dev's --debug-addr does.
func serveJoined(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve-joined", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	data := fs.String("data", "", "JetStream store directory (required)")
	core := fs.Bool("core", false, "send the calls on core NATS, with no stream (the joined-core part)")
	debugAddr := fs.String("debug-addr", "", "HOST:PORT serving /debug/pprof/profile (off when empty)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "serve-joined: --data is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	j, err := startJoined(ctx, *data, *core)
	if err != nil {
		fmt.Fprintf(stderr, "serve-joined: %v\n", err)
		return 1
	}
	defer j.close()
	if *debugAddr != "" {
		stopDebug, err := serveProfiles(*debugAddr)
		if err != nil {
			fmt.Fprintf(stderr, "serve-joined: %v\n", err)
			return 1
		}
		defer stopDebug()
	}
	if code := serve(ctx, "serve-joined", *addr, rpcHandler(j.call), stdout, stderr); code != 0 {
		return code
	}
	if err := j.refusals(); err != nil {
		fmt.Fprintf(stderr, "serve-joined: %v\n", err)
		return 1
	}
	return 0
}

// serveProfiles serves CPU profiles (/debug/pprof/profile) at addr until
// the function it returns is called.
func serveProfiles(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); <-done }, nil
}
