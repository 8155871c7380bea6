package bridge_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
	url string              // the MCP endpoint
	js  jetstream.JetStream // on the gateway's NATS, to publish events
	// held receives each call of hold as it reaches the worker, and ended
	// the cause of the end of each.
	held  chan *testkit.Call
	ended chan error
}

// startGateway starts a gateway, its worker and NATS for the rest of the
// test; wrap, when set, sees every request before the gateway.
func startGateway(t *testing.T, wrap func(http.Handler) http.Handler) *testGateway {
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
	var h http.Handler = mux
	if wrap != nil {
		h = wrap(mux)
	}
	srv := httptest.NewUnstartedServer(h)
	g.ConfigureServer(srv.Config)
	srv.Start()
	tg.url = srv.URL + gateway.MCPPath
	t.Cleanup(func() {
		g.Drain() // ends the event streams, which the server does not track
		srv.CloseClientConnections()
		srv.Close()
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
