package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestFollowEventsSurvivesAResetBeforeItsFirstEvent: the consumer that
// follows the events stream is deleted before it has delivered anything
// (as a missed heartbeat would have it made again); a list change
// published right after still reaches an open listen stream. Asking the
// consumer for "new" events only lost it: made again, it started after
// the change.
func TestFollowEventsSurvivesAResetBeforeItsFirstEvent(t *testing.T) {
	_, nc, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := New(ctx, nc, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mux := http.NewServeMux()
	g.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer g.Drain()

	body := `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+MCPPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(schema.HeaderProtocolVersion, schema.Revision20260728)
	req.Header.Set(schema.HeaderMethod, schema.MethodSubscriptionsListen)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data := make(chan string, 16)
	go func() {
		defer close(data)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data <- d
			}
		}
	}()
	if d := <-data; !strings.Contains(d, schema.NotificationSubscriptionsAck) {
		t.Fatalf("first event %s, want the acknowledgement", d)
	}

	events, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	names := events.ConsumerNames(ctx)
	var deleted int
	for name := range names.Name() {
		if err := events.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted != 1 {
		t.Fatalf("deleted %d consumers of %s, want the gateway's one", deleted, streams.EventsStream)
	}
	if _, err := js.Publish(ctx, streams.EventsToolsSubject, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-data:
		if !strings.Contains(d, schema.NotificationToolListChanged) {
			t.Fatalf("event %s, want the list change", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the list change published after the reset never reached the listen stream")
	}
}
