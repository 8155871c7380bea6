package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// replayStack is a deployment on real parts for replay's tests: an
// embedded nats-server listening on loopback, a worker group "count"
// with tool count (it answers its text and counts its runs by text) that
// records its answers, a gateway on real HTTP.
type replayStack struct {
	natsURL, endpoint string

	mu   sync.Mutex
	runs map[string]int // count's runs by text
	ran  chan string    // each run's text
}

// startReplayStack starts a replayStack, stopped when t ends.
func startReplayStack(t *testing.T) *replayStack {
	t.Helper()
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	s := &replayStack{natsURL: emb.ClientURL(), runs: map[string]int{}, ran: make(chan string, 64)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var conns []*nats.Conn
	connect := func() *nats.Conn {
		nc, err := emb.Connect()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		return nc
	}
	g := workers.NewGroup("count")
	type countIn struct {
		Text string `json:"text"`
	}
	workers.AddTool(g, workers.Tool{Name: "count"}, func(_ context.Context, _ *workers.Call, in countIn) (string, error) {
		s.mu.Lock()
		s.runs[in.Text]++
		s.mu.Unlock()
		s.ran <- in.Text
		return "counted " + in.Text, nil
	})
	ready, ran := make(chan struct{}), make(chan error, 1)
	wnc := connect()
	go func() {
		ran <- g.Run(ctx, wnc, workers.Options{Ready: ready, Heartbeat: time.Second, Logger: quiet, RecordResults: true})
	}()
	var gw *gateway.Gateway
	var srv *httptest.Server
	t.Cleanup(func() {
		if gw != nil {
			gw.Drain()
		}
		if srv != nil {
			srv.Close()
		}
		if gw != nil {
			gw.Close()
		}
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("group count: %v", err)
		}
		for _, nc := range conns {
			nc.Close()
		}
	})
	select {
	case <-ready:
	case err := <-ran:
		ran <- nil
		t.Fatalf("group count: %v", err)
	}
	if gw, err = gateway.New(ctx, connect(), gateway.Config{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(gw)
	s.endpoint = srv.URL
	return s
}

// client opens a session of the official client, listing count, closed
// when t ends.
func (s *replayStack) client(t *testing.T, ctx context.Context) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "replay-test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.endpoint, HTTPClient: &http.Client{}, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	testkit.Eventually(t, "count listed", 10*time.Second, func() bool {
		res, err := cs.ListTools(ctx, nil)
		return err == nil && slices.ContainsFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "count" })
	})
	return cs
}

// call calls count with text, failing the test on an error.
func (s *replayStack) call(t *testing.T, ctx context.Context, cs *mcp.ClientSession, text string) {
	t.Helper()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "count", Arguments: map[string]any{"text": text}}); err != nil {
		t.Fatal(err)
	}
}

// count is how many times count ran with text.
func (s *replayStack) count(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[text]
}

// awaitRuns waits until count has run n times with text, failing the
// test if ctx ends first.
func (s *replayStack) awaitRuns(t *testing.T, ctx context.Context, text string, n int) {
	t.Helper()
	for s.count(text) < n {
		select {
		case <-s.ran:
		case <-ctx.Done():
			t.Fatalf("count ran %d times with %q, want %d", s.count(text), text, n)
		}
	}
}

// lineWriter is a writer, for a command's output, that passes on each
// line it is given (whole lines: replay writes one per call).
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer // the part of a line not passed on yet
	all   bytes.Buffer // everything written
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 256)} }

// String is everything written.
func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf.Next(i + 1))
		select {
		case w.lines <- line[:i]:
		default: // nobody reads so many: dropped
		}
	}
}
