package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
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
		"--max-inflight", "50", "--queue-target", "3ms", "--group-queue-target", "80ms", "--cpu-queue-target", "7ms", "--max-session-inflight", "4",
		"--max-principal-inflight", "9", "--max-event-streams", "11", "--max-batch", "13", "--batch-concurrency", "3",
		"--max-conns", "12", "--header-timeout", "2s", "--body-timeout", "3s", "--min-body-rate", "4096", "--idle-timeout", "5s",
		"--principal-rate", "2.5", "--principal-burst", "6"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(context.Background(), slog.New(slog.DiscardHandler), streams.Topology{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "gw-1" || cfg.CallTimeout != 7*time.Second || cfg.MaxBody != 1000 || cfg.PrincipalHeader != "X-User" ||
		len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[1] != "https://b.example" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.GroupQueueTarget != 80*time.Millisecond {
		t.Errorf("--group-queue-target 80ms: GroupQueueTarget %s", cfg.GroupQueueTarget)
	}
	if cfg.MaxInFlight != 50 || cfg.QueueTarget != 3*time.Millisecond || cfg.CPUQueueTarget != 7*time.Millisecond || cfg.MaxSessionInFlight != 4 ||
		cfg.MaxPrincipalInFlight != 9 || cfg.MaxEventStreams != 11 {
		t.Errorf("admission: in flight %d, queue target %s, CPU queue target %s, session %d, principal %d, streams %d",
			cfg.MaxInFlight, cfg.QueueTarget, cfg.CPUQueueTarget, cfg.MaxSessionInFlight, cfg.MaxPrincipalInFlight, cfg.MaxEventStreams)
	}
	if cfg.MaxConns != 12 || cfg.HeaderTimeout != 2*time.Second || cfg.BodyTimeout != 3*time.Second || cfg.MinBodyRate != 4096 ||
		cfg.IdleTimeout != 5*time.Second {
		t.Errorf("hostile clients: conns %d, header %s, body %s, rate %d, idle %s",
			cfg.MaxConns, cfg.HeaderTimeout, cfg.BodyTimeout, cfg.MinBodyRate, cfg.IdleTimeout)
	}
	if cfg.MaxBatch != 13 || cfg.BatchConcurrency != 3 {
		t.Errorf("batches: at most %d messages, %d at once", cfg.MaxBatch, cfg.BatchConcurrency)
	}
	if cfg.PrincipalRate != 2.5 || cfg.PrincipalBurst != 6 {
		t.Errorf("principal rate %v burst %d", cfg.PrincipalRate, cfg.PrincipalBurst)
	}
}

// TestProvisionFlags: `mcpstream provision` applies its sizing flags to a
// real server's streams and buckets, request streams and the session and
// result buckets dropping their oldest entries when full.
func TestProvisionFlags(t *testing.T) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	ctx := context.Background()
	args := []string{"--nats", emb.ClientURL(), "--partitions", "2", "--max-age", "30m",
		"--max-bytes", "1048576", "--session-max-bytes", "2097152", "--duplicate-window", "45s", "--log-level", "error"}
	if err := runProvision(ctx, args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	js := jetStreamOf(t, emb)
	want := map[string]struct {
		maxBytes int64
		maxAge   time.Duration
	}{
		streams.StreamName(0):         {1 << 20, 30 * time.Minute},
		streams.StreamName(1):         {1 << 20, 30 * time.Minute},
		"KV_" + streams.SessionBucket: {2 << 20, 0},
		"KV_" + streams.ResultBucket:  {1 << 20, 0},
	}
	for name, w := range want {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		c := s.CachedInfo().Config
		if c.MaxBytes != w.maxBytes || c.Discard != jetstream.DiscardOld || (w.maxAge != 0 && c.MaxAge != w.maxAge) {
			t.Errorf("%s: MaxBytes %d, discard %v, MaxAge %s; want %d, old, %s", name, c.MaxBytes, c.Discard, c.MaxAge, w.maxBytes, w.maxAge)
		}
		if w.maxAge != 0 && c.Duplicates != 45*time.Second {
			t.Errorf("%s: duplicate window %s, want 45s (--duplicate-window)", name, c.Duplicates)
		}
	}
	if _, err := js.Stream(ctx, streams.StreamName(2)); err == nil {
		t.Error("a third partition stream exists with --partitions 2")
	}
}

// TestProvisionAgainKeepsSettings: `mcpstream provision` run again to
// change one setting keeps the others as recorded, where it once reset
// every setting whose flag was not given to its default (3 partitions
// back to 4, a 6h replay window back to 1h); a different --partitions is
// refused, a --duplicate-window longer than --max-age is refused naming
// the flags, and a --max-age alone shorter than the recorded window cuts
// the window to it.
func TestProvisionAgainKeepsSettings(t *testing.T) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	ctx := context.Background()
	run := func(args ...string) error {
		return runProvision(ctx, append([]string{"--nats", emb.ClientURL(), "--log-level", "error"}, args...), io.Discard, io.Discard)
	}
	if err := run("--partitions", "3", "--max-age", "6h", "--max-bytes", "1048576", "--ack-wait", "30s"); err != nil {
		t.Fatal(err)
	}
	if err := run("--duplicate-window", "90s"); err != nil {
		t.Fatal(err)
	}
	js := jetStreamOf(t, emb)
	rec, ok, err := streams.RecordedTopology(ctx, js)
	if err != nil || !ok {
		t.Fatalf("recorded topology: %v (%v)", err, ok)
	}
	if rec.Partitions != 3 || rec.MaxAge != 6*time.Hour || rec.MaxBytes != 1<<20 || rec.AckWait != 30*time.Second || rec.DuplicateWindow != 90*time.Second {
		t.Errorf("after provision --duplicate-window 90s: %d partitions, max age %v, %d bytes, ack wait %v, window %v; want 3, 6h, 1 MiB, 30s (kept) and 90s",
			rec.Partitions, rec.MaxAge, rec.MaxBytes, rec.AckWait, rec.DuplicateWindow)
	}
	s, err := js.Stream(ctx, streams.StreamName(2))
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != 6*time.Hour || c.MaxBytes != 1<<20 || c.Duplicates != 90*time.Second {
		t.Errorf("%s: max age %v, %d bytes, window %v; want 6h, 1 MiB, 90s", streams.StreamName(2), c.MaxAge, c.MaxBytes, c.Duplicates)
	}
	if err := run("--partitions", "4"); !errors.Is(err, streams.ErrPartitionsChanged) {
		t.Errorf("provision --partitions 4 over 3: %v, want ErrPartitionsChanged", err)
	}
	if err := run("--max-age", "30s", "--duplicate-window", "60s"); err == nil || !strings.Contains(err.Error(), "--duplicate-window at most --max-age") {
		t.Errorf("provision --max-age 30s --duplicate-window 60s: %v, want it refused naming the flags", err)
	}
	// A shorter --max-age alone cuts the recorded 90s window to it.
	if err := run("--max-age", "30s"); err != nil {
		t.Fatalf("provision --max-age 30s under a recorded 90s window: %v", err)
	}
	if rec, _, err := streams.RecordedTopology(ctx, js); err != nil || rec.MaxAge != 30*time.Second || rec.DuplicateWindow != 30*time.Second {
		t.Errorf("after provision --max-age 30s: max age %v, window %v (%v); want both 30s", rec.MaxAge, rec.DuplicateWindow, err)
	}
}

// signalWriter sends on ch (without blocking) each time what is written
// holds want.
type signalWriter struct {
	want string
	ch   chan struct{}
}

func (w signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.want) {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// TestRecordFlags: `mcpstream worker --record-results` makes each group's
// record stream with the limits the flags give; the limits without
// --record-results are refused, by dev too.
func TestRecordFlags(t *testing.T) {
	for _, run := range []func(context.Context, []string, io.Writer, io.Writer) error{runWorker, runDev} {
		err := run(context.Background(), []string{"--record-max-bytes", "1000", "--log-level", "error"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "need --record-results") {
			t.Errorf("--record-max-bytes without --record-results: %v", err)
		}
	}

	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serving := signalWriter{want: "worker group demo serving", ch: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- runWorker(ctx, []string{"--nats", emb.ClientURL(), "--examples", "demo", "--log-level", "error",
			"--record-results", "--record-max-age", "20m", "--record-max-bytes", "2097152"}, serving, io.Discard)
	}()
	select {
	case <-serving.ch:
	case err := <-done:
		t.Fatalf("worker returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not serving within 30s")
	}
	js := jetStreamOf(t, emb)
	s, err := js.Stream(ctx, streams.RecordStream("demo"))
	if err != nil {
		t.Fatalf("record stream of demo: %v", err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != 20*time.Minute || c.MaxBytes != 2<<20 || c.Discard != jetstream.DiscardOld {
		t.Errorf("record stream: MaxAge %s, MaxBytes %d, discard %v; want 20m, 2 MiB, old", c.MaxAge, c.MaxBytes, c.Discard)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker: %v", err)
	}
}

// TestAPIKeysFlag: --api-keys loads a key file into the gateway's
// authenticator (a request presenting a key is its principal's, another is
// refused), --api-key-scopes makes a key lacking a scope 403, and
// --api-keys excludes --principal-header and --jwks-url.
func TestAPIKeysFlag(t *testing.T) {
	h := sha256.Sum256([]byte("secret-key"))
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("alice "+hex.EncodeToString(h[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(args ...string) (gateway.Config, error) {
		fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f gatewayFlags
		f.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f.config(t.Context(), slog.New(slog.DiscardHandler), streams.Topology{}, nil) // the file is followed until the test ends
	}
	cfg, err := config("--api-keys", path)
	if err != nil || cfg.Auth == nil {
		t.Fatalf("config: %v, Auth %v", err, cfg.Auth)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
	r.Header.Set("Authorization", "Bearer secret-key")
	if p, err := cfg.Auth.Authenticate(r); err != nil || p != "alice" {
		t.Errorf("the key: %q %v", p, err)
	}
	r.Header.Set("Authorization", "Bearer other-key")
	if p, err := cfg.Auth.Authenticate(r); err == nil {
		t.Errorf("another key: principal %q", p)
	}
	// --api-key-scopes: the key file's line grants no scope, so the key
	// lacks the one required.
	cfg, err = config("--api-keys", path, "--api-key-scopes", "mcp:tools")
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer secret-key")
	if _, err := cfg.Auth.Authenticate(r); err == nil || !strings.Contains(err.Error(), "403 insufficient_scope") {
		t.Errorf("a key without the required scope: %v, want 403 insufficient_scope", err)
	}
	for _, args := range [][]string{
		{"--api-key-scopes", "mcp:tools"},
		{"--api-keys", path, "--api-key-scopes", "bad\"scope"},
		{"--api-keys", path, "--principal-header", "X-User"},
		{"--api-keys", path, "--jwks-url", "https://idp.example/jwks"},
		{"--api-keys", filepath.Join(t.TempDir(), "missing")},
	} {
		if _, err := config(args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// jetStreamOf is JetStream over a new connection to emb, closed with the
// test.
func jetStreamOf(t *testing.T, emb *streams.Embedded) jetstream.JetStream {
	t.Helper()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
