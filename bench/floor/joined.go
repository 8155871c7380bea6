package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// joined is the http floor's handler and a pipeline in one process, with
// none of mcpstream's logic between them: a tools/call is published to
// the pipeline's streams and answered when its reply comes back, as
// mcpstream's gateway does, but with no session, envelope, admission or
// schema. What it costs over http + jetstream is what joining the parts
// costs (goroutine hand-offs between net/http and the NATS connections),
// and what mcpstream costs over it is mcpstream's own logic.
type joined struct {
	p       *pipeline
	seq     atomic.Uint64
	waiters sync.Map // call number (uint64) -> chan struct{}
	body    []byte
}

// startJoined starts a pipeline with its store in dir and routes its
// replies; close stops it.
func startJoined(ctx context.Context, dir string) (*joined, error) {
	p, err := startPipeline(ctx, dir)
	if err != nil {
		return nil, err
	}
	j := &joined{p: p, body: make([]byte, envelopeSize)}
	if _, err := p.gc.Subscribe("floor.reply.*", j.route); err != nil {
		p.close()
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
	if err := j.p.publish("joined-"+id, "floor.reply."+id, "floor.ack."+id, j.body); err != nil {
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

func (j *joined) close() { j.p.close() }

// serveJoined is the harness re-executed as the joined part's server: it
// serves rpcHandler, its calls through a pipeline stored in --data, on
// /mcp at --addr, prints "listening on ADDR", and stops on SIGINT or
// SIGTERM.
func serveJoined(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve-joined", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	data := fs.String("data", "", "JetStream store directory (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "serve-joined: --data is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	j, err := startJoined(ctx, *data)
	if err != nil {
		fmt.Fprintf(stderr, "serve-joined: %v\n", err)
		return 1
	}
	defer j.close()
	if code := serve(ctx, "serve-joined", *addr, rpcHandler(j.call), stdout, stderr); code != 0 {
		return code
	}
	if err := j.p.refusals(); err != nil {
		fmt.Fprintf(stderr, "serve-joined: %v\n", err)
		return 1
	}
	return 0
}
