package itest

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/workers"
)

// TestResourceSubscriptions: the official client subscribes to a resource;
// a worker-side announcement (workers.ResourceUpdated on NATS) reaches it as
// notifications/resources/updated on its GET stream, and stops after it
// unsubscribes. A subscription taken on gateway B reaches the stream the
// session holds on gateway A, through the session bucket.
func TestResourceSubscriptions(t *testing.T) {
	s := newStack(t, gateway.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := s.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	announce := func(uri string) {
		t.Helper()
		if err := workers.ResourceUpdated(nc, uri); err != nil {
			t.Fatal(err)
		}
	}

	updated := make(chan string, 16)
	cs := connectOfficial(t, ctx, s.url, "itest-subscribe", &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	defer cs.Close()
	if caps := cs.InitializeResult().Capabilities.Resources; caps == nil || !caps.Subscribe {
		t.Fatalf("resources capability %+v, want subscribe", caps)
	}
	awaitStreams(t, s.gw, 1)
	next := func() string {
		t.Helper()
		select {
		case uri := <-updated:
			return uri
		case <-ctx.Done():
			t.Fatal("no notifications/resources/updated arrived")
			return ""
		}
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://doc"}); err != nil {
		t.Fatal(err)
	}
	announce("test://unwatched")
	announce("test://doc")
	if got := next(); got != "test://doc" {
		t.Fatalf("first update %q, want test://doc (the only subscribed URI)", got)
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "test://doc"}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://other"}); err != nil {
		t.Fatal(err)
	}
	announce("test://doc")
	announce("test://other")
	if got := next(); got != "test://other" {
		t.Fatalf("after unsubscribing: update %q, want test://other", got)
	}

	// Gateway B, on the same JetStream.
	bnc, err := s.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer bnc.Close()
	gwB, err := gateway.New(ctx, bnc, gateway.Config{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	srvB := httptest.NewServer(gwB)
	defer func() { srvB.Close(); gwB.Close() }()

	sid := initSession(t, s.url)
	stream := openStream(t, ctx, s.url, sid)
	defer stream.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
		close(events)
	}()
	if r := post(t, srvB.URL, `{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"test://far"}}`,
		"Mcp-Session-Id", sid); r.status != http.StatusOK || !strings.Contains(string(r.body), `"result":{}`) {
		t.Fatalf("subscribe on B: %d %s", r.status, r.body)
	}
	// A learns of the subscription through the bucket's watch, with no
	// event the client can see: announce until the stream on A carries it.
	deadline := time.After(10 * time.Second)
	for got := ""; !strings.Contains(got, `"uri":"test://far"`); {
		announce("test://far")
		select {
		case got = <-events:
			if !strings.Contains(got, `"method":"notifications/resources/updated"`) {
				t.Fatalf("unexpected event %s", got)
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("the subscription taken on B never reached the stream on A")
		}
	}
	for _, bad := range []string{`{}`, `{"uri":""}`, `{"uri":"` + strings.Repeat("x", 3000) + `"}`} {
		r := post(t, srvB.URL, `{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":`+bad+`}`, "Mcp-Session-Id", sid)
		if !strings.Contains(string(r.body), `"code":-32602`) {
			t.Errorf("subscribe with %.40s: %s, want -32602", bad, r.body)
		}
	}
}
