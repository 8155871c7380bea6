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
