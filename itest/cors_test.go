package itest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/auth"
	"github.com/mcpstream/mcpstream/gateway"
)

// bearerOK is an Authenticator for the test: "Bearer ok" is principal
// "tester", anything else is refused 401 as an auth.JWT would.
type bearerOK struct{}

func (bearerOK) Authenticate(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == "Bearer ok" {
		return "tester", nil
	}
	return "", &auth.Error{Status: http.StatusUnauthorized, Description: "a bearer token is required"}
}

// TestCORS: a page on an allowed origin can use the gateway from a
// browser: preflights are answered (before authentication, which browsers
// do not send with them) allowing the protocol's headers, including a
// tool's Mcp-Param-* ones, and responses, event streams and refusals let
// the page read the session id and the challenge. Another origin gets
// nothing of that.
func TestCORS(t *testing.T) {
	const app, evil = "https://app.example.test", "https://evil.example.test"
	s := newStack(t, gateway.Config{AllowedOrigins: []string{app}})

	preflight := func(url, origin string) rawResponse {
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		return do(t, req, "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type,mcp-session-id,mcp-protocol-version,authorization,mcp-param-city")
	}
	r := preflight(s.url, app)
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("preflight from %s: status %d, headers %v", app, r.status, r.header)
	}
	if m := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
		t.Errorf("preflight allows methods %q, want POST", m)
	}
	for _, h := range []string{"mcp-session-id", "authorization", "mcp-param-city", "mcp-protocol-version"} {
		if !strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), h) {
			t.Errorf("preflight allows headers %q, want %s", r.header.Get("Access-Control-Allow-Headers"), h)
		}
	}
	if r.header.Get("Access-Control-Max-Age") != "3600" {
		t.Errorf("preflight max age %q", r.header.Get("Access-Control-Max-Age"))
	}
	if r := preflight(s.url, evil); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s allowed: %v", evil, r.header)
	}

	// An actual request: the page may read the session id.
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"page","version":"1"}}}`
	r = post(t, s.url, init, "Origin", app)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" || r.header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Expose-Headers")), "mcp-session-id") {
		t.Fatalf("initialize from %s: status %d, headers %v", app, r.status, r.header)
	}
	if r := post(t, s.url, init, "Origin", evil); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("initialize from %s: status %d, headers %v; want 403 without CORS headers", evil, r.status, r.header)
	}

	// A GET event stream, served on the hijacked connection, carries them
	// too, or the page could not read it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := openStream(t, ctx, s.url, sid, "Origin", app)
	if stream.StatusCode != http.StatusOK || stream.Header.Get("Access-Control-Allow-Origin") != app ||
		stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("event stream from %s: status %d, headers %v", app, stream.StatusCode, stream.Header)
	}
	stream.Body.Close()

	// With authentication: the preflight is answered without credentials,
	// and the 401 lets the page read its challenge.
	a := newStack(t, gateway.Config{Auth: bearerOK{}})
	local := "http://localhost:6274" // a loopback origin, allowed by default
	if r := preflight(a.url, local); r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != local {
		t.Errorf("preflight with authentication on: status %d, headers %v", r.status, r.header)
	}
	r = post(t, a.url, init, "Origin", local)
	if r.status != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != local ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Expose-Headers")), "www-authenticate") {
		t.Errorf("unauthenticated initialize: status %d, headers %v", r.status, r.header)
	}
	if r := post(t, a.url, init, "Origin", local, "Authorization", "Bearer ok"); r.status != http.StatusOK {
		t.Errorf("authenticated initialize: status %d: %s", r.status, r.body)
	}
}
