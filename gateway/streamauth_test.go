package gateway_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestRevokedKeyEndsItsStreams: two principals hold GET streams opened
// with their API keys; the key file is rewritten without alice's key. Her
// stream is closed at a keep-alive after the reload (a stream outlives the
// request that opened it, and would otherwise keep delivering to a revoked
// key), and bob's goes on, keep-alives and all.
func TestRevokedKeyEndsItsStreams(t *testing.T) {
	aliceKey, bobKey := auth.GenerateAPIKey(), auth.GenerateAPIKey()
	line := func(principal, key string) string {
		h := auth.HashAPIKey(key)
		return principal + " " + hex.EncodeToString(h[:]) + "\n"
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(line("alice", aliceKey)+line("bob", bobKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := auth.WatchAPIKeys(ctx, path, auth.APIKeyOptions{Interval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	tg := newTestGateway(t, gateway.Config{Auth: keys, KeepAlive: 50 * time.Millisecond})
	stream := func(key string) *bufio.Reader {
		bearer := []string{"Authorization", "Bearer " + key}
		r := tg.post(t, initializeBody(1, "2025-11-25", `{}`), bearer...)
		wantResult(t, r)
		get := append([]string{"Accept", "text/event-stream", "Mcp-Session-Id", r.header.Get("Mcp-Session-Id"),
			"MCP-Protocol-Version", "2025-11-25"}, bearer...)
		resp := tg.open(t, ctx, http.MethodGet, tg.url, "", get...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET stream: status %d", resp.StatusCode)
		}
		return bufio.NewReader(resp.Body)
	}
	alice, bob := stream(aliceKey), stream(bobKey)
	keepAlive := func(r *bufio.Reader, whose string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s's stream ended: %v", whose, err)
			}
			if strings.HasPrefix(l, ": keep-alive") {
				return
			}
		}
	}
	keepAlive(alice, "alice")

	if err := os.WriteFile(path, []byte(line("bob", bobKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "alice's key revoked", 10*time.Second, func() bool { return keys.Len() == 1 })
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, alice)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("alice's stream: %v, want it ended by the server", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice's stream still open 10s after her key was revoked")
	}
	// Bob's stream went through the keep-alive that closed alice's, and on.
	keepAlive(bob, "bob")
	keepAlive(bob, "bob")
}
