package auth

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// TestScopesAlike: a JWT and an API key granting the same scopes are
// treated alike by the same required scopes: both accepted when they grant
// every required scope, both refused 403 insufficient_scope with the same
// challenge when they lack one (a longer scope starting with the required
// one does not count), both refused 401 naming the required scopes when
// the credential is unknown; a required scope that is not a scope token
// is refused by both constructors.
func TestScopesAlike(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "ec1", &ec.PublicKey, jwkset.AlgES256)
	required := []string{"mcp:tools", "mcp:read"}
	j := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RequiredScopes: required})

	path := filepath.Join(t.TempDir(), "keys")
	lines := ""
	cases := []struct {
		name    string
		granted string // space-separated
		status  int
	}{
		{"all", "mcp:read mcp:tools profile", 0},
		{"one missing", "mcp:tools profile", 403},
		{"a prefix only", "mcp:tools:read mcp:read", 403},
		{"none", "", 403},
	}
	for i, c := range cases {
		h := HashAPIKey(fmt.Sprintf("key-%d", i))
		lines += fmt.Sprintf("p%d %s %s\n", i, hex.EncodeToString(h[:]), c.granted)
	}
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := WatchAPIKeys(t.Context(), path, APIKeyOptions{RequiredScopes: required})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	for i, c := range cases {
		_, jerr := j.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, ec, "ec1", claims("scope", c.granted))))
		_, kerr := k.Authenticate(authRequest(fmt.Sprintf("Bearer key-%d", i)))
		if c.status == 0 {
			if jerr != nil || kerr != nil {
				t.Errorf("%s: JWT %v, API key %v; want both accepted", c.name, jerr, kerr)
			}
			continue
		}
		je, ke := authError(t, jerr), authError(t, kerr)
		if je.Status != c.status || ke.Status != c.status || je.Code != ErrCodeInsufficientScope || ke.Code != je.Code ||
			je.Scope != "mcp:tools mcp:read" || ke.Scope != je.Scope {
			t.Errorf("%s: JWT %+v, API key %+v; want both %d insufficient_scope naming the required scopes", c.name, je, ke, c.status)
		}
	}
	_, jerr := j.Authenticate(authRequest("Bearer not-a-token"))
	_, kerr := k.Authenticate(authRequest("Bearer not-a-key"))
	if je, ke := authError(t, jerr), authError(t, kerr); je.Status != 401 || ke.Status != 401 || je.Code != ke.Code || je.Scope != ke.Scope {
		t.Errorf("unknown credential: JWT %+v, API key %+v", je, ke)
	}
	for _, bad := range []string{"", "a b", `a"b`, `a\b`, "é"} {
		if _, err := NewJWT(t.Context(), JWTOptions{JWKSURL: iss.srv.URL, Issuer: testIss, Audience: testAud, RequiredScopes: []string{bad}}); err == nil {
			t.Errorf("JWT required scope %q: no error", bad)
		}
		if _, err := WatchAPIKeys(t.Context(), path, APIKeyOptions{RequiredScopes: []string{bad}}); err == nil {
			t.Errorf("API key required scope %q: no error", bad)
		}
	}
}
