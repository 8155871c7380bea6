package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/streams"
)

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
