package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mcpstream/mcpstream/auth"
)

// apiKeyRun runs `mcpstream apikey args...` with stdin and returns its
// stdout, stderr and error.
func apiKeyRun(stdin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := runAPIKey(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// privateFile fails the test unless path is a regular file of mode 0600.
func privateFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("%s: mode %v, want -rw-------", path, fi.Mode())
	}
}

// authenticates returns the principal a gateway reading the file gives
// key, or the refusal.
func authenticates(t *testing.T, path, key string, required ...string) (string, error) {
	t.Helper()
	a, err := auth.WatchAPIKeys(t.Context(), path, auth.APIKeyOptions{RequiredScopes: required})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return a.Authenticate(r)
}

// TestAPIKeyCommand: `apikey create` prints a new key once, on stdout
// only, and adds its hash, principal and scopes to a file of mode 0600
// that a gateway reads (the key is accepted for its principal, with its
// scopes); `list` shows principals, hash prefixes and scopes, never a key;
// `revoke` by key on stdin, by hash prefix and by principal removes just
// those lines (comments kept), after which a gateway refuses the key.
func TestAPIKeyCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# keys of the test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := func(args ...string) string {
		t.Helper()
		out, errOut, err := apiKeyRun("", append([]string{"create", "--file", path}, args...)...)
		if err != nil {
			t.Fatalf("create %q: %v", args, err)
		}
		key := strings.TrimSuffix(out, "\n")
		if !strings.HasPrefix(key, auth.APIKeyPrefix) || len(key) < len(auth.APIKeyPrefix)+43 || strings.Contains(key, "\n") {
			t.Fatalf("create %q printed %q, want the key alone", args, out)
		}
		if strings.Contains(errOut, key) {
			t.Errorf("create %q: the key on stderr", args)
		}
		return key
	}
	alice := create("--principal", "alice", "--scope", "mcp:tools", "--scope", "mcp:read,extra")
	alice2 := create("--principal", "alice")
	bob := create("--principal", "bob", "--scope", "mcp:tools")
	privateFile(t, path) // was 0644: the rewritten file is not
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{alice, alice2, bob} {
		if strings.Contains(string(b), k) {
			t.Fatalf("a key in the file:\n%s", b)
		}
	}
	if !strings.HasPrefix(string(b), "# keys of the test\nalice ") || strings.Count(string(b), "\n") != 4 {
		t.Errorf("file:\n%s", b)
	}
	if p, err := authenticates(t, path, alice, "mcp:tools", "mcp:read", "extra"); err != nil || p != "alice" {
		t.Errorf("alice's key with her scopes required: %q %v", p, err)
	}
	if _, err := authenticates(t, path, alice2, "mcp:tools"); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Errorf("alice's key without scopes, a scope required: %v", err)
	}

	out, _, err := apiKeyRun("", "list", "--file", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"PRINCIPAL HASH SCOPES", "alice " + short(alice) + " mcp:tools mcp:read extra", "alice " + short(alice2) + " -", "bob " + short(bob) + " mcp:tools"}
	if len(lines) != len(want) {
		t.Fatalf("list:\n%s", out)
	}
	for i, l := range lines {
		if strings.Join(strings.Fields(l), " ") != want[i] {
			t.Errorf("list line %d: %q, want %q", i, l, want[i])
		}
	}
	for _, k := range []string{alice, alice2, bob} {
		if strings.Contains(out, k) {
			t.Errorf("list prints a key:\n%s", out)
		}
	}

	// By the key itself, on stdin.
	if out, _, err := apiKeyRun(bob+"\n", "revoke", "--file", path, "--key-stdin"); err != nil || !strings.Contains(out, "revoked "+short(bob)+" bob") {
		t.Fatalf("revoke --key-stdin: %q %v", out, err)
	}
	if _, err := authenticates(t, path, bob); err == nil || !strings.Contains(err.Error(), "401 invalid_token") {
		t.Errorf("bob's key after revoke: %v, want 401 invalid_token", err)
	}
	// By hash prefix, as list prints it.
	if out, _, err := apiKeyRun("", "revoke", "--file", path, "--hash", strings.ToUpper(short(alice2))); err != nil || strings.Count(out, "revoked") != 1 {
		t.Fatalf("revoke --hash: %q %v", out, err)
	}
	if p, err := authenticates(t, path, alice); err != nil || p != "alice" {
		t.Errorf("alice's other key after revoking one: %q %v", p, err)
	}
	// By principal: every key of it; the file keeps its comment.
	create("--principal", "carol")
	_, errOut, err := apiKeyRun("", "revoke", "--file", path, "--principal", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut, "holds no key now") {
		t.Errorf("revoke said the file is empty with carol's key in it: %s", errOut)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "# keys of the test\ncarol ") || strings.Count(string(b), "\n") != 2 {
		t.Errorf("file after revoking alice:\n%s", b)
	}
	if _, errOut, err := apiKeyRun("", "revoke", "--file", path, "--principal", "carol"); err != nil || !strings.Contains(errOut, "holds no key now") {
		t.Errorf("revoking the last key: %q %v", errOut, err)
	}
	privateFile(t, path)
	if out, _, err := apiKeyRun("", "list", "--file", path); err != nil || strings.TrimSpace(out) != "PRINCIPAL  HASH  SCOPES" {
		t.Errorf("list of a file without keys: %q %v", out, err)
	}
}

func short(key string) string {
	h := auth.HashAPIKey(key)
	return auth.APIKey{Hash: h}.ShortHash()
}

// TestAPIKeyCommandErrors: a missing or invalid principal, an invalid
// scope, a file that does not parse, a revocation that matches nothing or
// a hash prefix matching two keys, and selectors given twice or not at all
// are errors, exit status 1 through the command line, the file left as it
// was; -h prints the "Usage of" help with status 0.
func TestAPIKeyCommandErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	a1, a2 := strings.Repeat("ab", 31)+"01", strings.Repeat("ab", 31)+"02" // one 8-digit prefix
	content := "alice " + a1 + "\nbob " + a2 + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("alice "+a1+"\nbob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"create", "--file", path}, "--principal is required"},
		{"", []string{"create", "--principal", "alice"}, "--file is required"},
		{"", []string{"create", "--file", path, "--principal", "al ice"}, "--principal: a principal may not hold white space"},
		{"", []string{"create", "--file", path, "--principal", "#alice"}, "may not start with '#'"},
		{"", []string{"create", "--file", path, "--principal", "alice", "--scope", `a"b`}, `--scope "a\"b": not a scope token`},
		{"", []string{"create", "--file", bad, "--principal", "carol"}, "line 2: want a principal"},
		{"", []string{"create", "--file", filepath.Join(dir, "none", "keys"), "--principal", "carol"}, "no such file or directory"},
		{"", []string{"list", "--file", bad}, "line 2: want a principal"},
		{"", []string{"list", "--file", filepath.Join(dir, "missing")}, "no such file"},
		{"", []string{"revoke", "--file", path, "--principal", "carol"}, "holds no key of principal carol: nothing revoked"},
		{"", []string{"revoke", "--file", path, "--hash", "abababab"}, "matches 2 keys"},
		{"", []string{"revoke", "--file", path, "--hash", "abc"}, "want 8 to 64 hex digits"},
		{"", []string{"revoke", "--file", path, "--hash", "zzzzzzzz"}, "want 8 to 64 hex digits"},
		{"mcps_unknown\n", []string{"revoke", "--file", path, "--key-stdin"}, "holds no key read from stdin"},
		{"\n", []string{"revoke", "--file", path, "--key-stdin"}, "no key on stdin"},
		{"", []string{"revoke", "--file", path}, "give one of"},
		{"", []string{"revoke", "--file", path, "--principal", "alice", "--hash", a1}, "give one of"},
		{"", []string{"revoke", "--file", bad, "--principal", "alice"}, "line 2"},
		{"", []string{"rotate"}, `unknown subcommand "rotate"`},
		{"", nil, "name a subcommand"},
	} {
		out, _, err := apiKeyRun(c.stdin, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
		if out != "" {
			t.Errorf("%q: printed %q on stdout", c.args, out)
		}
		if strings.Contains(fmt.Sprint(err), "mcps_unknown") {
			t.Errorf("%q: the error quotes the key: %v", c.args, err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("the file changed:\n%s", b)
	}
	var errb bytes.Buffer
	if code := run([]string{"apikey", "revoke", "--file", path, "--principal", "carol"}, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "mcpstream apikey: ") {
		t.Errorf("exit status %d, %q; want 1 and the error", code, errb.String())
	}
	for _, args := range [][]string{{"apikey", "-h"}, {"apikey", "create", "-h"}, {"apikey", "revoke", "-h"}, {"apikey", "list", "-h"}} {
		errb.Reset()
		want := "Usage of " + strings.Join(args[:len(args)-1], " ") + ":"
		if code := run(args, io.Discard, &errb); code != 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("%q: status %d, %q; want 0 and %q", args, code, errb.String(), want)
		}
	}
}

// TestAPIKeyCreateConcurrent: creates running at once on one file each
// add their key: the lock serialises their read-modify-write.
func TestAPIKeyCreateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	const n = 8
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, _, err := apiKeyRun("", "create", "--file", path, "--principal", fmt.Sprintf("p%d", i))
			if err != nil {
				t.Error(err)
			}
			keys[i] = strings.TrimSpace(out)
		})
	}
	wg.Wait()
	for i, k := range keys {
		if p, err := authenticates(t, path, k); err != nil || p != fmt.Sprintf("p%d", i) {
			t.Errorf("key %d: %q %v", i, p, err)
		}
	}
}
