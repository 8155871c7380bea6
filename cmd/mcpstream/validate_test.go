package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/streams"
)

// TestNegativeFlagsRefused: a negative size, count or duration that has no
// documented meaning stops dev, gateway and worker with an error naming
// the flag, before they connect anywhere; the documented negatives
// (--group-queue-target, --principal-rate-hold, --load-interval,
// --gc-percent) are still taken.
func TestNegativeFlagsRefused(t *testing.T) {
	nats := "nats://" + freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a command that gets past its flags ends at once
	for _, c := range []struct {
		run  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		flag string
		dev  bool
	}{
		{runGateway, []string{"--max-conns", "-5"}, "--max-conns", false},
		{runGateway, []string{"--max-body", "-1"}, "--max-body", false},
		{runGateway, []string{"--call-timeout", "-1s"}, "--call-timeout", false},
		{runGateway, []string{"--principal-rate", "-2", "--principal-header", "X-User"}, "--principal-rate", false},
		{runWorker, []string{"--concurrency", "-1"}, "--concurrency", false},
		{runWorker, []string{"--drain-timeout", "-1s"}, "--drain-timeout", false},
		{runWorker, []string{"--record-results", "--record-max-bytes", "-1"}, "--record-max-bytes", false},
		{runWorker, []string{"--upstream-pool", "-3", "--upstream", "x"}, "--upstream-pool", false},
		{runDev, []string{"--max-inflight", "-1"}, "--max-inflight", true},
		{runDev, []string{"--partitions", "-2"}, "--partitions", true},
	} {
		args := append([]string{"--log-level", "error"}, c.args...)
		if !c.dev {
			args = append(args, "--nats", nats)
		}
		err := c.run(ctx, args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.flag+" ") || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%v: %v, want an error naming %s as negative", c.args, err, c.flag)
		}
	}
	// Documented negatives pass the check (and fail later, on the
	// cancelled ctx or the absent server, for another reason).
	for _, args := range [][]string{
		{"--group-queue-target", "-1ms"}, {"--principal-rate-hold", "-1s", "--principal-rate", "1", "--principal-header", "X-User"}, {"--gc-percent", "-1"},
	} {
		err := runGateway(ctx, append([]string{"--nats", nats, "--log-level", "error"}, args...), io.Discard, io.Discard)
		if err != nil && strings.Contains(err.Error(), "negative") {
			t.Errorf("%v: %v", args, err)
		}
	}
	err := runWorker(ctx, []string{"--nats", nats, "--log-level", "error", "--load-interval", "-1s"}, io.Discard, io.Discard)
	if err != nil && strings.Contains(err.Error(), "negative") {
		t.Errorf("--load-interval -1s: %v", err)
	}
}

// TestPrincipalRateNeedsPrincipal: --principal-rate, --principal-burst and
// --principal-rate-hold without a principal source are refused, naming
// the sources; with one they are taken.
func TestPrincipalRateNeedsPrincipal(t *testing.T) {
	for _, args := range [][]string{{"--principal-rate", "5"}, {"--principal-burst", "3"}, {"--principal-rate-hold", "2s"}} {
		fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
		var f gatewayFlags
		f.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := f.config(context.Background(), slog.New(slog.DiscardHandler), streams.Topology{}, nil)
		if err == nil || !strings.Contains(err.Error(), "--principal-header, --jwks-url or --api-keys") {
			t.Errorf("%v: %v, want an error naming the principal sources", args, err)
		}
		fs = flag.NewFlagSet("gateway", flag.ContinueOnError)
		f = gatewayFlags{}
		f.register(fs)
		if err := fs.Parse(append(args, "--principal-header", "X-User")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.config(context.Background(), slog.New(slog.DiscardHandler), streams.Topology{}, nil); err != nil {
			t.Errorf("%v with --principal-header: %v", args, err)
		}
	}
}

// TestMaxBodyOverWhatNATSCarries: a --max-body larger than a request can
// be queued (the server's max_payload, 1 MiB by default, or the request
// streams' MaxMsgSize, 8 MiB) stops gateway and dev at start with an
// error naming both values, instead of refusing every such call with
// -32603 later.
func TestMaxBodyOverWhatNATSCarries(t *testing.T) {
	url, _ := passwordNATS(t, "pw")
	t.Setenv(envNATSUser, "u")
	t.Setenv(envNATSPassword, "pw")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a command that gets past the check ends at once
	err := runGateway(ctx, []string{"--nats", url, "--log-level", "error", "--max-body", "2000000"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--max-body 2000000") || !strings.Contains(err.Error(), "max_payload 1048576") {
		t.Errorf("gateway: %v, want an error naming --max-body 2000000 and max_payload 1048576", err)
	}
	// The embedded server of dev carries 16 MiB; the streams take 8.
	err = runDev(ctx, []string{"--log-level", "error", "--examples", "", "--max-body", "9000000"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--max-body 9000000") || !strings.Contains(err.Error(), "MaxMsgSize 8388608") {
		t.Errorf("dev: %v, want an error naming --max-body 9000000 and MaxMsgSize 8388608", err)
	}
}
