package itest

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// apikey runs `mcpstream apikey args...` with stdin and returns its
// stdout, failing the test when it exits with an error.
func apikey(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"apikey"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("mcpstream apikey %q: %v: %s", args, err, errb.String())
	}
	return out.String()
}

// private fails the test unless path has mode 0600.
func private(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("%s: mode %v, want -rw-------", path, fi.Mode())
	}
}

// TestAPIKeyRevocation: keys made by `mcpstream apikey create` into a file
// of mode 0600 let the official client list and call tools on `mcpstream
// dev --api-keys` (real HTTP on loopback, the embedded nats-server); a key
// without the scope --api-key-scopes requires gets 403 insufficient_scope.
// After `mcpstream apikey revoke`, the running gateway refuses the key,
// 401 invalid_token, within 5 s (polled, never restarted), also on a
// session opened before; a key created after start is accepted, and a
// file that stops parsing keeps the keys held and is reported on stderr,
// which never holds a key.
func TestAPIKeyRevocation(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	create := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(apikey(t, "", append([]string{"create", "--file", keys}, args...)...))
	}
	alice := create("--principal", "alice", "--scope", "mcp:tools")
	bob := create("--principal", "bob") // no scope
	private(t, keys)

	dev, endpoint, _ := startDev(t, false, "--api-keys", keys, "--api-key-scopes", "mcp:tools")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	auth := func(key string) []string { return []string{"Authorization", "Bearer " + key} }
	const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`

	c, err := dialGoSDK(ctx, endpoint, &http.Client{Transport: bearer{token: alice}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.call(ctx, "echo", map[string]any{"text": "with a key"}); err != nil || got != "with a key" {
		t.Fatalf("echo with alice's key = %q, %v", got, err)
	}
	r := post(t, endpoint, initBody, auth(bob)...)
	if ch := challenge(t, r); r.status != http.StatusForbidden || ch["error"] != "insufficient_scope" || ch["scope"] != "mcp:tools" {
		t.Fatalf("bob's key, without the scope: status %d, challenge %v; want 403 insufficient_scope", r.status, ch)
	}
	if r := post(t, endpoint, initBody); r.status != http.StatusUnauthorized {
		t.Fatalf("no key: status %d, want 401", r.status)
	}
	r = post(t, endpoint, initBody, auth(alice)...)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" {
		t.Fatalf("initialize as alice: status %d: %s", r.status, r.body)
	}

	// Revoke alice's key, given on stdin as an operator holding it would.
	if out := apikey(t, alice+"\n", "revoke", "--file", keys, "--key-stdin"); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke printed %q", out)
	}
	private(t, keys)
	revoked := time.Now()
	testkit.Eventually(t, "alice's revoked key refused", 5*time.Second, func() bool {
		return post(t, endpoint, ping, append(auth(alice), "Mcp-Session-Id", sid)...).status == http.StatusUnauthorized
	})
	t.Logf("revoked key refused %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	r = post(t, endpoint, initBody, auth(alice)...)
	if ch := challenge(t, r); r.status != http.StatusUnauthorized || ch["error"] != "invalid_token" {
		t.Fatalf("initialize with the revoked key: status %d, challenge %v; want 401 invalid_token", r.status, ch)
	}
	if _, _, err := c.call(ctx, "echo", map[string]any{"text": "revoked"}); err == nil {
		t.Fatal("the client holding the revoked key still calls tools")
	}
	_ = c.close()

	// A key created while the gateway runs is accepted; a file that stops
	// parsing keeps it.
	carol := create("--principal", "carol", "--scope", "mcp:tools")
	testkit.Eventually(t, "carol's new key accepted", 5*time.Second, func() bool {
		return post(t, endpoint, initBody, auth(carol)...).status == http.StatusOK
	})
	f, err := os.OpenFile(keys, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("dave " + carol + "\n") // a key where its hash belongs
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	stderr := func() string {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		return dev.stderr.String()
	}
	testkit.Eventually(t, "the file that does not parse reported", 5*time.Second, func() bool {
		return strings.Contains(stderr(), "reloading API keys failed")
	})
	if r := post(t, endpoint, initBody, auth(carol)...); r.status != http.StatusOK {
		t.Fatalf("carol's key after the file broke: status %d, want the keys held", r.status)
	}
	dev.stop()
	for _, k := range []string{alice, bob, carol} {
		if strings.Contains(stderr(), k) {
			t.Errorf("a key on dev's stderr:\n%s", stderr())
		}
	}
}
