package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

func sum(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// TestAPIKeys: a key file names principals by their keys' hashes; a
// request presenting a key as a bearer token is its principal's, an
// unknown key 401 invalid_token, no token 401 with no error code, a
// malformed header 400; malformed files are refused with the line.
func TestAPIKeys(t *testing.T) {
	file := "# keys\n\nalice " + sum("k-alice-1") + "\nalice " + strings.ToUpper(sum("k-alice-2")) + "\nbob " + sum("k-bob") + "\n"
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.LoadAPIKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	req := func(authz ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
		for _, v := range authz {
			r.Header.Add("Authorization", v)
		}
		return r
	}
	for key, want := range map[string]string{"k-alice-1": "alice", "k-alice-2": "alice", "k-bob": "bob"} {
		if p, err := a.Authenticate(req("Bearer " + key)); err != nil || p != want {
			t.Errorf("%s: %q %v, want %s", key, p, err, want)
		}
	}
	for _, c := range []struct {
		authz  []string
		status int
		code   string
	}{
		{[]string{"Bearer k-mallory"}, 401, auth.ErrCodeInvalidToken},
		{[]string{"Bearer " + sum("k-bob")}, 401, auth.ErrCodeInvalidToken}, // the hash is not the key
		{nil, 401, ""},
		{[]string{"Basic a2V5"}, 401, ""},
		{[]string{"Bearer a b"}, 400, auth.ErrCodeInvalidRequest},
		{[]string{"Bearer k-bob", "Bearer k-bob"}, 400, auth.ErrCodeInvalidRequest},
	} {
		p, err := a.Authenticate(req(c.authz...))
		var e *auth.Error
		if !errors.As(err, &e) || e.Status != c.status || e.Code != c.code || p != "" {
			t.Errorf("%q: %q %v, want %d %q", c.authz, p, err, c.status, c.code)
		}
	}
	if p, err := auth.NewAPIKeys(map[string]string{"k": "carol"}).Authenticate(req("Bearer k")); err != nil || p != "carol" {
		t.Errorf("NewAPIKeys: %q %v", p, err)
	}
	for _, bad := range []string{"alice", "alice nothex", "alice " + sum("x")[:10], "alice " + sum("x") + "\nbob " + sum("x"), "# none\n"} {
		if _, err := auth.ReadAPIKeys(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestParseAPIKeys: a key file's lines are a principal, a hash and
// optional scopes: the two-field lines of older files still parse (no
// scope), tabs and runs of spaces separate fields, a key's line reads back
// as itself; a bad line is refused naming its line and field, never
// quoting it (a key pasted in place of its hash stays out of the error).
func TestParseAPIKeys(t *testing.T) {
	file := "# old and new lines\nalice " + sum("k1") + "\n\n  bob\t" + strings.ToUpper(sum("k2")) + "   mcp:tools  mcp:read\t\ncarol " + sum("k3") + " mcp:tools\n"
	keys, err := auth.ParseAPIKeys(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		principal, hash string
		scopes          []string
	}{{"alice", sum("k1"), nil}, {"bob", sum("k2"), []string{"mcp:tools", "mcp:read"}}, {"carol", sum("k3"), []string{"mcp:tools"}}}
	if len(keys) != len(want) {
		t.Fatalf("%d keys, want %d: %v", len(keys), len(want), keys)
	}
	for i, w := range want {
		k := keys[i]
		if k.Principal != w.principal || hex.EncodeToString(k.Hash[:]) != w.hash || !slices.Equal(k.Scopes, w.scopes) {
			t.Errorf("key %d: %+v, want %+v", i, k, w)
		}
		again, ok, err := auth.ParseAPIKeyLine(k.String())
		if !ok || err != nil || again.Principal != k.Principal || again.Hash != k.Hash || !slices.Equal(again.Scopes, k.Scopes) {
			t.Errorf("key %d: %q reads back as %+v %v %v", i, k.String(), again, ok, err)
		}
		if k.ShortHash() != w.hash[:12] {
			t.Errorf("key %d: short hash %q", i, k.ShortHash())
		}
	}
	if keys, err := auth.ParseAPIKeys(strings.NewReader("# nothing yet\n\n")); err != nil || len(keys) != 0 {
		t.Errorf("a file of comments: %v %v, want no key and no error", keys, err)
	}

	const secret = "mcps_pasted-by-mistake"
	for _, c := range []struct{ file, want string }{
		{"alice", "line 1: want a principal"},
		{"# c\nalice nothex", "line 2: the second field is not the hex SHA-256"},
		{"alice " + sum("x")[:10], "line 1: the second field is not"},
		{"alice " + secret + " mcp:tools", "line 1: the second field is a key"},
		{"alice " + sum("x") + " mcp:tools bad\"scope", "line 1: scope 2:"},
		{"alice " + sum("x") + " mcp:tööls", "line 1: scope 1:"},
		{"al\x00ice " + sum("x"), "line 1: a principal may not hold"},
		{"alice " + sum("x") + "\nbob " + sum("x"), "line 2: a key hash given twice"},
	} {
		_, err := auth.ParseAPIKeys(strings.NewReader(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.file, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), sum("x")) {
			t.Errorf("%q: the error quotes the line: %v", c.file, err)
		}
	}
	for _, p := range []string{"", "#alice", "al ice", "al\tice", "al\nice"} {
		if auth.CheckPrincipal(p) == nil {
			t.Errorf("principal %q accepted", p)
		}
	}
	if k := auth.GenerateAPIKey(); !strings.HasPrefix(k, auth.APIKeyPrefix) || len(k) != len(auth.APIKeyPrefix)+43 || k == auth.GenerateAPIKey() {
		t.Errorf("generated key %q", k)
	}
}

// syncBuffer is a log destination written by the reloading goroutine and
// read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchAPIKeys: WatchAPIKeys follows its file: a key added by a rename
// over the file is accepted, a key removed refused; a file that stops
// parsing, or is gone, keeps the keys held and logs one error naming the
// line, never the key; an empty file refuses every key; Close stops the
// goroutine (as does the end of its context), after which changes are not
// followed.
func TestWatchAPIKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	write := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, "keys.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	accepts := func(a *auth.APIKeys, key string) bool {
		r, _ := http.NewRequest(http.MethodPost, "http://gw/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		_, err := a.Authenticate(r)
		return err == nil
	}
	if _, err := auth.WatchAPIKeys(t.Context(), path, auth.APIKeyOptions{}); err == nil {
		t.Error("a missing file: no error")
	}
	write("# none yet\n")
	if _, err := auth.WatchAPIKeys(t.Context(), path, auth.APIKeyOptions{}); err == nil {
		t.Error("a file without keys: no error")
	}

	write("alice " + sum("k-alice") + "\n")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := auth.WatchAPIKeys(t.Context(), path, auth.APIKeyOptions{Interval: 10 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !accepts(a, "k-alice") || accepts(a, "k-bob") {
		t.Fatal("the first file's keys are not what is accepted")
	}
	write("alice " + sum("k-alice") + "\nbob " + sum("k-bob") + "\n")
	testkit.Eventually(t, "a key added is accepted", 5*time.Second, func() bool { return accepts(a, "k-bob") })
	write("bob " + sum("k-bob") + "\n")
	testkit.Eventually(t, "a key removed is refused", 5*time.Second, func() bool { return !accepts(a, "k-alice") })

	const secret = "mcps_not-a-hash"
	write("bob " + sum("k-bob") + "\ncarol " + secret + "\n")
	testkit.Eventually(t, "an error for the file that does not parse", 5*time.Second, func() bool { return strings.Contains(logs.String(), "line 2") })
	if !accepts(a, "k-bob") || a.Len() != 1 {
		t.Errorf("after a bad file: bob accepted %v, %d keys; want the keys held", accepts(a, "k-bob"), a.Len())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "an error for the missing file", 5*time.Second, func() bool { return strings.Count(logs.String(), "level=ERROR") == 2 })
	if !accepts(a, "k-bob") {
		t.Error("after the file went: bob refused; want the keys held")
	}
	write("# every key revoked\n")
	testkit.Eventually(t, "an empty file refuses every key", 5*time.Second, func() bool { return !accepts(a, "k-bob") })
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors logged, want one per bad state of the file:\n%s", n, logs.String())
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, "k-bob") || strings.Contains(l, "k-alice") {
		t.Errorf("a key in the log:\n%s", l)
	}

	a.Close()
	write("dave " + sum("k-dave") + "\n")
	// Nothing to wait for: Close returned after the goroutine did. Five
	// intervals pass, in which a goroutine left running would reload.
	time.Sleep(50 * time.Millisecond)
	if accepts(a, "k-dave") {
		t.Error("a change followed after Close")
	}

	// The end of the context stops the goroutine too: Close returns at
	// once.
	ctx, cancel := context.WithCancel(t.Context())
	b, err := auth.WatchAPIKeys(ctx, path, auth.APIKeyOptions{Interval: 10 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	b.Close()
}
