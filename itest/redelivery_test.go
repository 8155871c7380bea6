package itest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// jetStreamAt connects to the NATS server at url for the rest of the test.
func jetStreamAt(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	return jetStreamOver(t, func() (*nats.Conn, error) { return nats.Connect(url) })
}

// jetStreamOver opens JetStream over a connection from connect, closed at
// the end of the test.
func jetStreamOver(t *testing.T, connect func() (*nats.Conn, error)) jetstream.JetStream {
	t.Helper()
	_, js := testkit.JetStreamOver(t, connect)
	return js
}

// consumerTotals sums the demo group's consumer state over all partitions.
type consumerTotals struct {
	ackPending, pending int
	// deliveries counts every delivery, first ones and redeliveries.
	deliveries uint64
}

func demoConsumers(ctx context.Context, t *testing.T, js jetstream.JetStream) consumerTotals {
	t.Helper()
	var tot consumerTotals
	for p := range (streams.Topology{}).WithDefaults().Partitions {
		c, err := js.Consumer(ctx, streams.StreamName(p), streams.ConsumerName("demo"))
		if err != nil {
			t.Fatalf("consumer on partition %d: %v", p, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatalf("consumer info on partition %d: %v", p, err)
		}
		tot.ackPending += info.NumAckPending
		tot.pending += int(info.NumPending)
		tot.deliveries += info.Delivered.Consumer
	}
	return tot
}

// awaitConsumers polls the consumers' state until cond holds.
func awaitConsumers(t *testing.T, js jetstream.JetStream, what string, timeout time.Duration, cond func(consumerTotals) bool) consumerTotals {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var tot consumerTotals
	defer func() {
		if t.Failed() {
			t.Logf("the consumers' last state: %+v", tot)
		}
	}()
	testkit.Eventually(t, what, timeout, func() bool {
		tot = demoConsumers(ctx, t, js)
		return cond(tot)
	})
	return tot
}

// sleepCalls starts n sleep calls spread over sessions of the go-sdk client,
// each with its own duration so that every answer names its call. It
// returns a function that waits for them and reports every failure.
func sleepCalls(t *testing.T, endpoint string, sessions, perSession, baseMs int) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, sessions*perSession)
	var clients []caller
	for s := range sessions {
		c, err := dialGoSDK(ctx, endpoint, &http.Client{})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		for i := range perSession {
			ms := baseMs + s*perSession + i
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, _, err := c.call(ctx, "sleep", map[string]any{"ms": ms})
				if want := fmt.Sprintf("slept %d ms", ms); err != nil || got != want {
					errs <- fmt.Errorf("sleep %d: got %q, %v; want %q", ms, got, err, want)
				}
			}()
		}
	}
	return func() {
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, c := range clients {
			_ = c.close()
		}
	}
}

// TestWorkerCrashRedelivery kills a worker (SIGKILL, no drain) while it
// holds calls, then starts another: every call is answered, once, with its
// own result, through redelivery after AckWait.
func TestWorkerCrashRedelivery(t *testing.T) {
	dev, endpoint, natsURL := startDev(t, true, "--examples", "0", "--ack-wait", "2s")
	a := start(t, "worker-a", "worker", "--nats", natsURL, "--log-level", "warn")
	a.waitLine(workerRE, 30*time.Second)

	js := jetStreamAt(t, natsURL)
	const sessions, perSession = 8, 5
	const n = sessions * perSession
	wait := sleepCalls(t, endpoint, sessions, perSession, 3000)
	awaitConsumers(t, js, "all calls held by worker A", 30*time.Second, func(c consumerTotals) bool {
		return c.ackPending == n
	})
	if code := a.signal(syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatal("worker A exited cleanly after SIGKILL")
	}
	b := start(t, "worker-b", "worker", "--nats", natsURL, "--log-level", "warn")
	b.waitLine(workerRE, 30*time.Second)
	wait()

	tot := awaitConsumers(t, js, "every envelope acknowledged", 30*time.Second, func(c consumerTotals) bool {
		return c.ackPending == 0 && c.pending == 0
	})
	if tot.deliveries < 2*n {
		t.Errorf("%d deliveries of %d envelopes; want each delivered twice (they were held by the killed worker)", tot.deliveries, n)
	}
	b.stop()
	dev.stop()
}

// TestWorkerGracefulDrain stops a worker with SIGTERM while it runs calls:
// it finishes them, acknowledges them and exits 0; nothing is redelivered.
func TestWorkerGracefulDrain(t *testing.T) {
	dev, endpoint, natsURL := startDev(t, true, "--examples", "0")
	a := start(t, "worker-a", "worker", "--nats", natsURL, "--log-level", "warn")
	a.waitLine(workerRE, 30*time.Second)
	js := jetStreamAt(t, natsURL)
	const sessions, perSession = 4, 5
	wait := sleepCalls(t, endpoint, sessions, perSession, 1000)
	awaitConsumers(t, js, "all calls held by the worker", 30*time.Second, func(c consumerTotals) bool {
		return c.ackPending == sessions*perSession
	})
	if code := a.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("worker exited with status %d after SIGTERM, want 0", code)
	}
	wait()
	tot := demoConsumers(context.Background(), t, js)
	if tot.ackPending != 0 || tot.pending != 0 || tot.deliveries != sessions*perSession {
		t.Fatalf("after a drained stop: %+v, want nothing pending or redelivered", tot)
	}
	dev.stop()
}
