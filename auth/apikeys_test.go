package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/auth"
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
