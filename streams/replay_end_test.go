package streams_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// publishTo stores n requests of group g in partition p's stream, keys
// <prefix><i>, each with params of pad bytes, and returns the keys.
func publishTo(t *testing.T, js jetstream.JetStream, p, n int, prefix string, pad int) []string {
	t.Helper()
	var params []byte
	if pad > 0 {
		params, _ = schema.JSONToMsgpack(nil, []byte(`{"text":"`+strings.Repeat("x", pad)+`"}`))
	}
	var keys []string
	for i := range n {
		env := schema.Envelope{Key: fmt.Sprintf("%s%d", prefix, i), Method: schema.MethodToolsCall, Name: "t",
			Params: params, Session: "s", ReplyTo: "mcp.reply.gw", Attempt: 1}
		b, _ := env.Marshal()
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: streams.RequestSubject("g", p), Data: b}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, env.Key)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
	return keys
}

// blockedReplay runs Replay with o in the background; its emit holds the
// first request until release is closed. It returns the emitted keys (as
// they come), the first request's arrival, and Replay's result.
type blockedReplay struct {
	keys    chan string
	first   chan struct{}
	release chan struct{}
	done    chan error
}

func startBlockedReplay(ctx context.Context, js jetstream.JetStream, o streams.ReplayOptions) *blockedReplay {
	r := &blockedReplay{keys: make(chan string, 100000), first: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
	n := 0
	go func() {
		r.done <- streams.Replay(ctx, js, o, func(rec *streams.Recorded) error {
			n++
			if n == 1 {
				close(r.first)
				<-r.release
			}
			if rec.Envelope != nil {
				r.keys <- rec.Envelope.Key
			}
			return nil
		})
	}()
	return r
}

// await waits for the replay's result, failing the test after timeout.
func (r *blockedReplay) await(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Replay did not return within %v", timeout)
		return nil
	}
}

// TestReplayEndsWhenRangeIsPurged: when the rest of a range is removed
// before the reader pulls it (purged here; expired by MaxAge is the same
// to the reader), the range still ends: the replay returns, with the
// requests it read, and with Follow a request stored in another partition
// afterwards is passed on instead of waiting behind the dead range.
func TestReplayEndsWhenRangeIsPurged(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx := context.Background()
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	publishTo(t, js, 0, 2000, "k", 10<<10) // 20 MiB: more than a reader buffers
	purge := func() {
		t.Helper()
		s, err := js.Stream(ctx, streams.StreamName(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("range", func(t *testing.T) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r := startBlockedReplay(rctx, js, streams.ReplayOptions{Stream: streams.StreamName(0)})
		<-r.first
		purge()
		close(r.release)
		if err := r.await(t, time.Minute); err != nil {
			t.Fatalf("replay of a purged range: %v (%d requests read)", err, len(r.keys))
		}
		if n := len(r.keys); n == 0 || n >= 2000 {
			t.Errorf("read %d requests; want those buffered before the purge", n)
		}
	})

	t.Run("follow", func(t *testing.T) {
		publishTo(t, js, 0, 2000, "f", 10<<10)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r := startBlockedReplay(rctx, js, streams.ReplayOptions{Follow: true})
		<-r.first
		purge()
		close(r.release)
		publishTo(t, js, 1, 1, "live", 0)
		deadline := time.After(20 * time.Second)
		for {
			select {
			case k := <-r.keys:
				if k != "live0" {
					continue
				}
				cancel()
				if err := r.await(t, time.Minute); err != context.Canceled {
					t.Errorf("follow ended with %v", err)
				}
				return
			case err := <-r.done:
				t.Fatalf("follow ended with %v before the live request", err)
			case <-deadline:
				t.Fatal("a request stored in partition 1 was not passed on: the follow waits on partition 0's purged range")
			}
		}
	})
}

// TestReplayStreamDeletedUnderIt: a stream deleted under a follow ends
// the replay with an error naming it; and a replay whose stream was just
// deleted returns soon after its context ends.
func TestReplayStreamDeletedUnderIt(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx := context.Background()
	for _, cancelFirst := range []bool{false, true} {
		name := map[bool]string{false: "error", true: "cancel"}[cancelFirst]
		t.Run(name, func(t *testing.T) {
			if err := streams.Provision(ctx, js, streams.Topology{Partitions: 2}); err != nil {
				t.Fatal(err)
			}
			publishTo(t, js, 0, 10, "k", 0)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			r := startBlockedReplay(rctx, js, streams.ReplayOptions{Follow: true})
			<-r.first
			close(r.release)
			for range 10 {
				<-r.keys
			}
			if err := js.DeleteStream(ctx, streams.StreamName(0)); err != nil {
				t.Fatal(err)
			}
			if cancelFirst {
				cancel() // Ctrl-C: well before the 7 s its consumer is tried again
				if err := r.await(t, 5*time.Second); err != context.Canceled {
					t.Errorf("cancelled replay returned %v", err)
				}
				return
			}
			err := r.await(t, 45*time.Second)
			t.Logf("returned %v", err)
			if err == nil || !strings.Contains(err.Error(), streams.StreamName(0)) {
				t.Errorf("replay of a deleted stream returned %v, want an error naming %s", err, streams.StreamName(0))
			}
		})
	}
}
