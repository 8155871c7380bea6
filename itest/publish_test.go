package itest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers/examples"
)

// TestPublishRetriedUntilStreamBack: while a session's request stream is
// gone, the gateway's publish gets no stream's PubAck and is retried with
// backoff; once the stream is back (and a worker consumes it) the same
// call is answered, within its deadline.
func TestPublishRetriedUntilStreamBack(t *testing.T) {
	retried := make(chan struct{}, 1)
	s := newStack(t, gateway.Config{Logger: slog.New(testkit.LogSignal{Msg: "publish failed, retrying", Ch: retried})})
	sid := initSession(t, s.url)
	js := jetStreamOver(t, func() (*nats.Conn, error) { return s.emb.Connect() })
	ctx := context.Background()
	p := streams.Partition(sid, streams.Topology{}.WithDefaults().Partitions)
	if err := js.DeleteStream(ctx, streams.StreamName(p)); err != nil {
		t.Fatal(err)
	}
	answer := make(chan rawResponse, 1)
	go func() { answer <- post(t, s.url, echoBody(7, "after the outage"), "Mcp-Session-Id", sid) }()
	select {
	case <-retried:
	case r := <-answer:
		t.Fatalf("answered with no stream to take the request: status %d: %s", r.status, r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("no publish retry in 10s")
	}
	if _, err := js.CreateStream(ctx, streams.Topology{}.StreamConfig(p)); err != nil {
		t.Fatal(err)
	}
	// The stream's consumers went with it; a new replica of the group
	// provisions them again and serves the retried request.
	s.runGroup(t, examples.Demo(), "echo")
	select {
	case r := <-answer:
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "after the outage") {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no answer 20s after the stream came back")
	}
}

// TestPublishRefused: a publish the stream refuses for good (here a
// request over the stream's largest message) is answered at once with a
// JSON-RPC internal error, not left to time out.
func TestPublishRefused(t *testing.T) {
	s := newStack(t, gateway.Config{})
	sid := initSession(t, s.url)
	js := jetStreamOver(t, func() (*nats.Conn, error) { return s.emb.Connect() })
	ctx := context.Background()
	st, err := js.Stream(ctx, streams.StreamName(streams.Partition(sid, streams.Topology{}.WithDefaults().Partitions)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 64
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	r := post(t, s.url, echoBody(8, strings.Repeat("x", 200)), "Mcp-Session-Id", sid)
	e := decodeError(t, r.body)
	if e.Error.Code != -32603 || !strings.Contains(e.Error.Message, "could not queue") {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if took := time.Since(started); took > 10*time.Second {
		t.Errorf("refusal took %s", took)
	}
}
