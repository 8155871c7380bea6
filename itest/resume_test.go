package itest

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/workers"
)

// sseEvent is one event read from a stream: its id and data.
type sseEvent struct{ id, data string }

// readEvents returns the events of an SSE body on a channel.
func readEvents(body interface{ Read([]byte) (int, error) }) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// TestResumeStreamOnAnotherGateway: a session's GET stream on gateway A
// carries events with ids; the client loses it, events happen meanwhile,
// and it opens its stream again on gateway B (another process) with
// Last-Event-ID: B replays what it missed from JetStream, in order, then
// goes on live.
func TestResumeStreamOnAnotherGateway(t *testing.T) {
	devA, endpointA, natsURL := startDev(t, true, "--examples", "0")
	gwB := start(t, "gateway-b", "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn")
	endpointB := gwB.waitLine(endpointRE, 30*time.Second)[1]
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	updated := func(uri string) {
		t.Helper()
		if err := workers.ResourceUpdated(nc, uri); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := func(ch <-chan sseEvent, what string) sseEvent {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			return ev
		case <-ctx.Done():
			t.Fatalf("%s: nothing arrived", what)
		}
		return sseEvent{}
	}

	sid := initSession(t, endpointA)
	if r := post(t, endpointA, `{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"test://doc"}}`, "Mcp-Session-Id", sid); r.status != http.StatusOK {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	sctx, closeA := context.WithCancel(ctx)
	streamA := openStream(t, sctx, endpointA, sid)
	eventsA := readEvents(streamA.Body)
	// The stream is open once an update shows on it; until then, announce.
	var first sseEvent
	for first.id == "" {
		updated("test://doc")
		select {
		case first = <-eventsA:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no event on the stream on A")
		}
	}
	if !strings.Contains(first.data, `"uri":"test://doc"`) {
		t.Fatalf("first event %+v", first)
	}
	// Lose the stream; the last event the client saw is its position.
	closeA()
	streamA.Body.Close()
	last := first
	for ev := range eventsA {
		last = ev
	}
	seen := id(t, last)

	updated("test://other") // not subscribed: never shown
	updated("test://doc")
	updated("test://doc")
	resumed := openStream(t, ctx, endpointB, sid, "Last-Event-ID", last.id)
	defer resumed.Body.Close()
	eventsB := readEvents(resumed.Body)
	prev := seen
	for n := 0; n < 2; n++ {
		ev := next(eventsB, "replay on B")
		if got := id(t, ev); got <= prev || !strings.Contains(ev.data, `"uri":"test://doc"`) {
			t.Fatalf("replayed %+v after id %d, want only later updates of the subscribed resource, in order", ev, prev)
		} else {
			prev = got
		}
	}
	updated("test://doc")
	for {
		ev := next(eventsB, "live event on B")
		if got := id(t, ev); got <= prev {
			t.Fatalf("event %+v after id %d: out of order or repeated", ev, prev)
		} else {
			prev = got
		}
		// Updates the announcing loop left in flight come first; the live
		// one is the last announced.
		if strings.Contains(ev.data, "test://doc") && prev > seen+3 {
			break
		}
	}
	gwB.stop()
	devA.stop()
}

func id(t *testing.T, ev sseEvent) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(ev.id, 10, 64)
	if err != nil {
		t.Fatalf("event %+v has no numeric id", ev)
	}
	return n
}
