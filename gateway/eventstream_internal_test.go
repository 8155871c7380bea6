package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// Of two GET streams of a session, the later GET's delivers, whichever is
// ready first: a stream whose GET came earlier but that is published
// after the later one's (its replay was slower, or its goroutine ran
// late) is closed itself, and leaves the later one open and delivering.
func TestLaterGETKeepsTheStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := startAnnouncing(t, ctx).g
	sess := newSession("0123456789abcdef0123456789abcdef", sessionRecord{})
	// The handler serves a GET's stream as get does, in the order the
	// request names.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order, _ := strconv.ParseUint(r.URL.Query().Get("order"), 10, 64)
		sess.openStreams.Add(1)
		if _, ok := g.hijackStream(w, r, sess, sseHead, 0, order); !ok {
			t.Error("the test server's connection was not hijacked")
		}
	}))
	t.Cleanup(srv.Close)
	open := func(order int) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"?order="+strconv.Itoa(order), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	delivering := func() uint64 {
		if es := sess.stream.Load(); es != nil && !es.closed.Load() {
			return es.order
		}
		return 0
	}

	open(2)
	testkit.Eventually(t, "the later GET's stream delivering", 20*time.Second, func() bool { return delivering() == 2 })
	earlier := open(1)
	if _, err := io.ReadAll(earlier.Body); err != nil {
		t.Fatalf("the earlier GET's stream, published last, is still open: %v", err)
	}
	testkit.Eventually(t, "the earlier GET's stream let go", 20*time.Second, func() bool { return g.eventStreams.open.Load() == 1 })
	if o := delivering(); o != 2 {
		t.Fatalf("the stream of GET %d delivers, want the later GET's (2)", o)
	}
}
