package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/streams"
)

// TestGatewayFlagsConfig: each gateway flag lands in its Config field.
func TestGatewayFlagsConfig(t *testing.T) {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f gatewayFlags
	f.register(fs)
	err := fs.Parse([]string{"--id", "gw-1", "--call-timeout", "7s", "--max-body", "1000",
		"--allowed-origins", "https://a.example, https://b.example", "--principal-header", "X-User",
		"--max-inflight", "50", "--queue-target", "3ms", "--cpu-queue-target", "7ms", "--max-session-inflight", "4",
		"--max-principal-inflight", "9", "--max-streams", "11"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(context.Background(), slog.New(slog.DiscardHandler), streams.Topology{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "gw-1" || cfg.CallTimeout != 7*time.Second || cfg.MaxBody != 1000 || cfg.PrincipalHeader != "X-User" ||
		len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[1] != "https://b.example" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.MaxInFlight != 50 || cfg.QueueTarget != 3*time.Millisecond || cfg.CPUQueueTarget != 7*time.Millisecond || cfg.MaxSessionInFlight != 4 ||
		cfg.MaxPrincipalInFlight != 9 || cfg.MaxStreams != 11 {
		t.Errorf("admission: in flight %d, queue target %s, CPU queue target %s, session %d, principal %d, streams %d",
			cfg.MaxInFlight, cfg.QueueTarget, cfg.CPUQueueTarget, cfg.MaxSessionInFlight, cfg.MaxPrincipalInFlight, cfg.MaxStreams)
	}
}
