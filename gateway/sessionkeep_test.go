package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// TestSessionKeptByItsStream: a client whose GET stream is open but which
// sends nothing keeps its session past the session bucket's TTL (the
// stream's keep-alives store it again); once the stream is closed and the
// session unused, it expires.
func TestSessionKeptByItsStream(t *testing.T) {
	const ttl = 2 * time.Second
	tg := newTestGateway(t, gateway.Config{Topology: streams.Topology{SessionTTL: ttl}, KeepAlive: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := tg.js.KeyValue(ctx, streams.SessionBucket)
	if err != nil {
		t.Fatal(err)
	}
	hs := tg.initialize(t, "2025-11-25", `{}`)
	sid := hs[1]
	streamCtx, closeStream := context.WithCancel(ctx)
	stream := tg.open(t, streamCtx, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, hs...)...)
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d", stream.StatusCode)
	}

	// The stream open for twice the TTL, no request: the session is in
	// the bucket all along (looked for there, not by a request, which
	// would keep it).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); {
		<-tick.C
		if _, err := kv.Get(ctx, sid); err != nil {
			t.Fatalf("with its stream open, the session left the bucket: %v", err)
		}
	}

	closeStream()
	testkit.Eventually(t, "the session expired once its stream closed", ttl+10*time.Second, func() bool {
		_, err := kv.Get(ctx, sid)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}
