package bridge_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// testGateway is a real mcpstream gateway on loopback, on an embedded
// JetStream, with a test worker group serving two tools: echo answers its
// text; hold waits until its context ends (the client cancelled, or the
// test ended), reporting its call on held and its end on ended.
type testGateway struct {
	url string // the MCP endpoint
	// transport reaches the endpoint (over TLS and HTTP/2 with h2).
	transport *http.Transport
	// js is on the gateway's NATS, to publish events.
	js jetstream.JetStream
	// held receives each call of hold as it reaches the worker, and ended
	// the cause of the end of each.
	held  chan *testkit.Call
	ended chan error
}

// startGateway starts a gateway, its worker and NATS for the rest of the
// test, served over HTTP/1.1 on loopback, or with h2 over TLS and HTTP/2.
func startGateway(t *testing.T, h2 bool) *testGateway {
	t.Helper()
	emb, _, js := testkit.JetStream(t)
	connect := func() *nats.Conn {
		nc, _ := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return emb.Connect() })
		return nc
	}
	cfg := gateway.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Topology.Partitions = 1
	tg := &testGateway{js: js, held: make(chan *testkit.Call, 16), ended: make(chan error, 16)}
	testkit.StartWorker(t, connect(), testkit.WorkerOptions{
		Group:    "bridgetest",
		Topology: cfg.Topology,
		Tools: []schema.Tool{
			{Name: "echo", InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)},
			{Name: "hold"},
		},
		Handle: tg.handle,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := gateway.New(ctx, connect(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	mux := http.NewServeMux()
	g.Mount(mux)
	// The server does not wait for the handlers of hijacked connections
	// (a GET stream's handler catches up after hijacking it): they must
	// end before NATS stops, or a replay in progress retries forever.
	var handlers sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		mux.ServeHTTP(w, r)
	}))
	g.ConfigureServer(srv.Config)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		tg.transport = srv.Client().Transport.(*http.Transport)
	} else {
		srv.Start()
		tg.transport = &http.Transport{}
	}
	tg.url = srv.URL + gateway.MCPPath
	t.Cleanup(func() {
		tg.transport.CloseIdleConnections()
		g.Drain() // ends the event streams, which the server does not track
		srv.CloseClientConnections()
		srv.Close()
		handlers.Wait()
	})
	return tg
}

// handle serves the test worker's tools.
func (tg *testGateway) handle(ctx context.Context, c *testkit.Call) (any, error) {
	switch c.Env.Name {
	case "echo":
		var a struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(c.Args, &a)
		return map[string]any{"content": []any{map[string]any{"type": "text", "text": a.Text}}}, nil
	case "hold":
		tg.held <- c
		<-ctx.Done()
		tg.ended <- context.Cause(ctx)
		return nil, ctx.Err()
	}
	return nil, schema.Errorf(schema.CodeInvalidParams, "no tool %s", c.Env.Name)
}
