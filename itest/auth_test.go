package itest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// bearer adds a bearer token to every request, as an OAuth-enabled client
// does once it holds a token.
type bearer struct{ token string }

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(req)
}

// TestBearerTokens: `mcpstream dev` validating OAuth bearer tokens against
// an authorization server's key set (served here): the official client
// with a token lists and calls tools; a request without one gets 401 with
// a challenge naming the protected resource metadata, which is served; a
// session is bound to its token's subject; tokens for another audience, or
// lacking the required scope, are refused; the HTTP+SSE and stateless
// transports are guarded too.
func TestBearerTokens(t *testing.T) {
	const (
		issuer     = "https://auth.example.test"
		authServer = "https://login.example.test"
		resource   = "https://mcp.example.test/mcp"
	)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := jwkset.NewMemoryStorage()
	testkit.PublishKey(t, keys, &key.PublicKey, jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgES256, USE: jwkset.UseSig})
	jwksURL := testkit.ServeJWKS(t, keys)
	token := func(sub, aud, scope string) string {
		t.Helper()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": issuer, "aud": aud, "sub": sub, "scope": scope,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob := token("alice", resource, "mcp:tools"), token("bob", resource, "mcp:tools offline")
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	dev, endpoint, _ := startDev(t, false, "--jwks-url", jwksURL, "--jwt-issuer", issuer, "--resource-url", resource,
		"--auth-server", authServer, "--jwt-scopes", "mcp:tools")
	base := strings.TrimSuffix(endpoint, "/mcp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// (1) The official client and mcp-go, holding a token; without one,
	// neither connects.
	for name, dial := range map[string]func(context.Context, string, *http.Client) (caller, error){"go-sdk": dialGoSDK, "mcp-go": dialMCPGo} {
		c, err := dial(ctx, endpoint, &http.Client{Transport: bearer{token: alice}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tools, err := c.listTools(ctx); err != nil || !slices.Contains(tools, "echo") {
			t.Fatalf("%s: tools/list with a token = %v, %v", name, tools, err)
		}
		if got, _, err := c.call(ctx, "echo", map[string]any{"text": "with a token"}); err != nil || got != "with a token" {
			t.Fatalf("%s: echo with a token = %q, %v", name, got, err)
		}
		if err := c.close(); err != nil {
			t.Fatalf("%s: close: %v", name, err)
		}
		if c, err := dial(ctx, endpoint, &http.Client{}); err == nil {
			_ = c.close()
			t.Fatalf("%s connected without a token", name)
		}
	}

	// (2) No token: 401 and a challenge naming the metadata, which is
	// served where it says (the path, on the gateway behind the public
	// host name).
	const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	r := post(t, endpoint, initBody)
	if r.status != http.StatusUnauthorized || r.header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("initialize without a token: status %d, session %q", r.status, r.header.Get("Mcp-Session-Id"))
	}
	ch := challenge(t, r)
	if _, ok := ch["error"]; ok || ch["scope"] != "mcp:tools" {
		t.Errorf("challenge to a request without a token: %v; want scope, no error", ch)
	}
	mdURL, err := url.Parse(ch["resource_metadata"])
	if err != nil || mdURL.Scheme != "https" || mdURL.Host != "mcp.example.test" || mdURL.Path != "/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("resource_metadata %q, want the well-known URL of %s", ch["resource_metadata"], resource)
	}
	for _, path := range []string{mdURL.Path, "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var md oauthex.ProtectedResourceMetadata
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
		}
		if md.Resource != resource || !slices.Equal(md.AuthorizationServers, []string{authServer}) ||
			!slices.Equal(md.ScopesSupported, []string{"mcp:tools"}) || !slices.Equal(md.BearerMethodsSupported, []string{"header"}) {
			t.Errorf("GET %s: %+v", path, md)
		}
	}

	// (3) A session is bound to its token's subject.
	r = post(t, endpoint, initBody, auth(alice)...)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" {
		t.Fatalf("initialize as alice: status %d: %s", r.status, r.body)
	}
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	if r := post(t, endpoint, ping, append(auth(bob), "Mcp-Session-Id", sid)...); r.status != http.StatusNotFound {
		t.Fatalf("bob using alice's session: status %d, want 404", r.status)
	}
	req, _ := http.NewRequest(http.MethodDelete, endpoint, nil)
	if r := do(t, req, append(auth(bob), "Mcp-Session-Id", sid)...); r.status != http.StatusNotFound {
		t.Fatalf("bob deleting alice's session: status %d, want 404", r.status)
	}
	if r := post(t, endpoint, ping, "Mcp-Session-Id", sid); r.status != http.StatusUnauthorized {
		t.Fatalf("alice's session without a token: status %d, want 401", r.status)
	}
	if r := post(t, endpoint, ping, append(auth(alice), "Mcp-Session-Id", sid)...); r.status != http.StatusOK {
		t.Fatalf("alice using her session: status %d: %s", r.status, r.body)
	}

	// (4) Tokens issued for another resource, or lacking the scope.
	r = post(t, endpoint, initBody, auth(token("alice", "https://other.example.test/mcp", "mcp:tools"))...)
	if ch := challenge(t, r); r.status != http.StatusUnauthorized || ch["error"] != "invalid_token" {
		t.Fatalf("a token for another audience: status %d, challenge %v; want 401 invalid_token", r.status, ch)
	}
	r = post(t, endpoint, initBody, auth(token("alice", resource, "profile"))...)
	if ch := challenge(t, r); r.status != http.StatusForbidden || ch["error"] != "insufficient_scope" || ch["scope"] != "mcp:tools" {
		t.Fatalf("a token lacking the scope: status %d, challenge %v; want 403 insufficient_scope", r.status, ch)
	}

	// The other transports: HTTP+SSE and the stateless revision.
	req, _ = http.NewRequest(http.MethodGet, base+"/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	if r := do(t, req); r.status != http.StatusUnauthorized || challenge(t, r)["resource_metadata"] == "" {
		t.Fatalf("GET /sse without a token: status %d, want 401 with a challenge", r.status)
	}
	const meta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"stateless"},` + meta + `}}`
	stateless := []string{"MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "echo"}
	if r := post(t, endpoint, call, stateless...); r.status != http.StatusUnauthorized {
		t.Fatalf("stateless tools/call without a token: status %d, want 401", r.status)
	}
	if r := post(t, endpoint, call, append(stateless, auth(bob)...)...); r.status != http.StatusOK || !strings.Contains(string(r.body), `"text":"stateless"`) {
		t.Fatalf("stateless tools/call with a token: status %d: %s", r.status, r.body)
	}
	dev.stop()
}

// challenge parses the response's WWW-Authenticate Bearer challenge with
// the official SDK's parser and returns its parameters.
func challenge(t *testing.T, r rawResponse) map[string]string {
	t.Helper()
	chs, err := oauthex.ParseWWWAuthenticate(r.header.Values("WWW-Authenticate"))
	if err != nil || len(chs) != 1 || !strings.EqualFold(chs[0].Scheme, "Bearer") {
		t.Fatalf("WWW-Authenticate %q: %+v, %v", r.header.Values("WWW-Authenticate"), chs, err)
	}
	return chs[0].Params
}
