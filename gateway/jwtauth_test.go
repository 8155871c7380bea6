package gateway_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

// TestJWTOverHTTP: a gateway validating bearer JWTs against a key set
// served over HTTP, on real HTTP: a token issued for it is accepted, its
// audience's scheme and host in any case; a token for another resource
// (RFC 8707), expired, signed by the key set's encryption key, or listing
// critical header extensions is refused 401 invalid_token, and one lacking
// the required scope 403 insufficient_scope, each with the challenge
// naming the protected resource metadata (served without a token) and the
// scope. The token itself never reaches the worker: only the principal.
func TestJWTOverHTTP(t *testing.T) {
	const (
		issuer   = "https://auth.example.test"
		resource = "https://mcp.example.test/mcp"
		scope    = "mcp:tools"
	)
	sig, enc := ecdsaKey(t), ecdsaKey(t)
	keys := jwkset.NewMemoryStorage()
	testkit.PublishKey(t, keys, &sig.PublicKey, jwkset.JWKMetadataOptions{KID: "sig", ALG: jwkset.AlgES256, USE: jwkset.UseSig})
	testkit.PublishKey(t, keys, &enc.PublicKey, jwkset.JWKMetadataOptions{KID: "enc", USE: jwkset.UseEnc})
	a, err := auth.NewJWT(t.Context(), auth.JWTOptions{JWKSURL: testkit.ServeJWKS(t, keys), Issuer: issuer, Audience: resource,
		RequiredScopes: []string{scope}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	tg := newTestGateway(t, gateway.Config{Auth: a, ResourceMetadata: auth.ResourceMetadata{Resource: resource}})

	token := func(key *ecdsa.PrivateKey, kid string, change func(jwt.MapClaims, map[string]any)) string {
		t.Helper()
		now := time.Now()
		c := jwt.MapClaims{"iss": issuer, "aud": resource, "sub": "alice", "scope": scope, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["kid"] = kid
		if change != nil {
			change(c, tok.Header)
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	good := token(sig, "sig", nil)
	wantResult(t, tg.post(t, initializeBody(1, "2025-11-25", `{}`), "Authorization", good))
	upper := token(sig, "sig", func(c jwt.MapClaims, _ map[string]any) { c["aud"] = "HTTPS://MCP.EXAMPLE.TEST/mcp" })
	wantResult(t, tg.post(t, initializeBody(1, "2025-11-25", `{}`), "Authorization", upper))

	metadataURL := "https://mcp.example.test" + auth.MetadataPath + "/mcp"
	for _, c := range []struct {
		name, authorization string
		status              int
		code                string
	}{
		{"for another resource", token(sig, "sig", func(c jwt.MapClaims, _ map[string]any) { c["aud"] = "https://other.example.test/mcp" }), 401, auth.ErrCodeInvalidToken},
		{"expired", token(sig, "sig", func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 401, auth.ErrCodeInvalidToken},
		{"signed by the encryption key", token(enc, "enc", nil), 401, auth.ErrCodeInvalidToken},
		{"critical header extension", token(sig, "sig", func(_ jwt.MapClaims, h map[string]any) { h["crit"] = []string{"x"}; h["x"] = 1 }), 401, auth.ErrCodeInvalidToken},
		{"lacking the scope", token(sig, "sig", func(c jwt.MapClaims, _ map[string]any) { c["scope"] = "profile" }), 403, auth.ErrCodeInsufficientScope},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := tg.post(t, initializeBody(1, "2025-11-25", `{}`), "Authorization", c.authorization)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			chs, err := oauthex.ParseWWWAuthenticate(r.header.Values("WWW-Authenticate"))
			if err != nil || len(chs) != 1 {
				t.Fatalf("WWW-Authenticate %q: %v", r.header.Values("WWW-Authenticate"), err)
			}
			if p := chs[0].Params; p["error"] != c.code || p["scope"] != scope || p["resource_metadata"] != metadataURL || p["error_description"] == "" {
				t.Errorf("challenge params %v", p)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || body.Error != c.code {
				t.Errorf("body %s, want error %q", r.body, c.code)
			}
		})
	}

	// A token in the query string only (which the MCP specification
	// forbids) is no credential: 401 naming no error, and the body says
	// where the token goes.
	q := tg.do(t, http.MethodPost, tg.url+"?access_token="+good[len("Bearer "):], initializeBody(1, "2025-11-25", `{}`))
	var qbody struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(q.body, &qbody); q.status != http.StatusUnauthorized || err != nil || qbody.Error != "" ||
		!strings.Contains(qbody.Description, "Authorization header") {
		t.Errorf("a token in the query string: %d %s, want 401 saying the token goes in the Authorization header", q.status, q.body)
	}

	md := tg.do(t, http.MethodGet, tg.base+auth.MetadataPath+"/mcp", "")
	var doc struct {
		Resource string   `json:"resource"`
		Servers  []string `json:"authorization_servers"`
		Scopes   []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(md.body, &doc); md.status != http.StatusOK || err != nil || doc.Resource != resource ||
		len(doc.Servers) != 1 || doc.Servers[0] != issuer || len(doc.Scopes) != 1 || doc.Scopes[0] != scope {
		t.Fatalf("metadata without a token: status %d: %s", md.status, md.body)
	}

	// A call's envelope names the principal, and carries no credential.
	init := tg.post(t, initializeBody(1, "2025-11-25", `{}`), "Authorization", good)
	wantResult(t, init)
	session := []string{"Mcp-Session-Id", init.header.Get("Mcp-Session-Id"), "MCP-Protocol-Version", "2025-11-25", "Authorization", good}
	if r := tg.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session...); r.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", r.status, r.body)
	}
	answer := tg.postAsync(t.Context(), callBody(2, "hold", `{}`, ""), session...)
	held := tg.awaitHeld(t)
	env, err := held.call.Env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if held.call.Env.Principal != "alice" || bytes.Contains(env, []byte(good[len("Bearer "):])) {
		t.Errorf("the envelope names principal %q, or carries the token", held.call.Env.Principal)
	}
	held.release <- map[string]any{"content": []any{}}
	if r := await(t, answer, "the held call's answer"); r.status != http.StatusOK {
		t.Fatalf("the held call: status %d: %s", r.status, r.body)
	}
}

func ecdsaKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
