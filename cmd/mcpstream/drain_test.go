package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// lineSignal sends each line written that holds want on ch, without
// waiting.
type lineSignal struct {
	want string
	ch   chan string
}

func (w lineSignal) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), w.want) {
			select {
			case w.ch <- sc.Text():
			default:
			}
		}
	}
	return len(p), nil
}

// awaitLine returns the first line on ch, failing t when the command ends
// first (on done, which it then refills) or after 30s.
func awaitLine(t *testing.T, ch chan string, what string, done chan error) string {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case err := <-done:
		done <- err
		t.Fatalf("ended before %s: %v", what, err)
		return ""
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s after 30s", what)
		return ""
	}
}

// TestGatewayDrainTimeout: a gateway stopped with a call in flight (the
// demo sleep tool, 60s) waits --drain-timeout (1s) for it, not the 60s of
// --call-timeout, then answers it with -32000 and closes.
func TestGatewayDrainTimeout(t *testing.T) {
	url, _ := passwordNATS(t, "pw")
	t.Setenv(envNATSUser, "u")
	t.Setenv(envNATSPassword, "pw")
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	wready := make(chan string, 1)
	go func() {
		wdone <- runWorker(wctx, []string{"--nats", url, "--log-level", "error", "--drain-timeout", "1s"}, lineSignal{"serving", wready}, io.Discard)
	}()
	defer func() { wcancel(); <-wdone }()
	awaitLine(t, wready, "worker serving", wdone)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	endpoint := make(chan string, 1)
	metrics := make(chan string, 1)
	out := io.MultiWriter(lineSignal{"MCP endpoint http://", endpoint}, lineSignal{"metrics http://", metrics})
	go func() {
		done <- runGateway(ctx, []string{"--nats", url, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "error",
			"--drain-timeout", "1s"}, out, io.Discard)
	}()
	metricsURL := strings.Fields(awaitLine(t, metrics, "metrics endpoint", done))[2]
	f := strings.Fields(awaitLine(t, endpoint, "MCP endpoint", done))
	mcpURL := f[len(f)-1]

	callDone := make(chan struct{})
	var answer string // the call's answer, or why there is none
	go func() {
		defer close(callDone)
		answer = postSleep(mcpURL)
	}()
	awaitInFlight(t, metricsURL)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("gateway took %s to stop, want about --drain-timeout 1s", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway still draining 30s after it was stopped, with --drain-timeout 1s")
	}
	<-callDone
	// Cut short by the drain's end, the call is answered, not dropped.
	if !strings.Contains(answer, "-32000") || !strings.Contains(answer, "shut down") {
		t.Errorf("the call in flight got %q, want a -32000 answer saying the gateway shut down", answer)
	}
}

// TestGatewayDrainDefault: without --drain-timeout the gateway's drain
// lasts its calls' deadline, --call-timeout (60s by default), so that a
// call in flight can finish.
func TestGatewayDrainDefault(t *testing.T) {
	for _, c := range []struct {
		f    gatewayFlags
		want time.Duration
	}{
		{gatewayFlags{}, 60 * time.Second},
		{gatewayFlags{callTimeout: 90 * time.Second}, 90 * time.Second},
		{gatewayFlags{callTimeout: 90 * time.Second, drainTimeout: 5 * time.Second}, 5 * time.Second},
	} {
		if got := c.f.drain(); got != c.want {
			t.Errorf("call timeout %s, drain timeout %s: drain %s, want %s", c.f.callTimeout, c.f.drainTimeout, got, c.want)
		}
	}
}
