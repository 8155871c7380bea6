package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpstream/mcpstream/auth"
)

// noRead is a request body that fails the test if it is read.
type noRead struct{ t *testing.T }

func (b noRead) Read([]byte) (int, error) {
	b.t.Error("the body of a refused request was read")
	return 0, io.EOF
}

// refuseAll is an Authenticator that refuses every request with the
// error its Authorization header names, as auth.JWT would refuse it.
type refuseAll struct{}

func (refuseAll) Authenticate(r *http.Request) (string, error) {
	switch r.Header.Get("Authorization") {
	case "":
		return "", &auth.Error{Status: http.StatusUnauthorized, Description: "a bearer token is required", Scope: "mcp:tools"}
	case "Bearer scopeless":
		return "", &auth.Error{Status: http.StatusForbidden, Code: auth.ErrCodeInsufficientScope, Description: "token lacks a required scope", Scope: "mcp:tools"}
	}
	return "", &auth.Error{Status: http.StatusUnauthorized, Code: auth.ErrCodeInvalidToken, Description: "token is expired", Scope: "mcp:tools"}
}

// TestGatewayRefusesBeforeReadingTheBody: each transport's handler
// answers an unauthenticated request with the challenge, naming the
// protected resource metadata, and an OAuth error body, without reading
// the body.
func TestGatewayRefusesBeforeReadingTheBody(t *testing.T) {
	md, err := auth.NewMetadata(auth.ResourceMetadata{Resource: "https://mcp.example.test/mcp",
		AuthorizationServers: []string{"https://auth.example.test"}}, refuseAll{})
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{cfg: Config{Auth: refuseAll{}}.withDefaults(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), metadata: md}
	for _, c := range []struct {
		name, method, target, auth string
		h                          http.Handler
		status                     int
		code                       string
	}{
		{"POST /mcp without a token", http.MethodPost, "/mcp", "", g, 401, ""},
		{"GET /mcp with an expired token", http.MethodGet, "/mcp", "Bearer expired", g, 401, auth.ErrCodeInvalidToken},
		{"DELETE /mcp with Basic", http.MethodDelete, "/mcp", "", g, 401, ""},
		{"GET /sse without a token", http.MethodGet, "/sse", "", g.HTTPSSE("/messages"), 401, ""},
		{"POST /messages with a bad token", http.MethodPost, "/messages?sessionId=x", "Bearer x.y.z", g.HTTPSSE("/messages"), 401, auth.ErrCodeInvalidToken},
		{"POST /mcp lacking a scope", http.MethodPost, "/mcp", "Bearer scopeless", g, 403, auth.ErrCodeInsufficientScope},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.target, noRead{t})
			req.Header.Set("Content-Type", "application/json")
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			chs, err := oauthex.ParseWWWAuthenticate(rec.Header().Values("WWW-Authenticate"))
			if err != nil || len(chs) != 1 {
				t.Fatalf("WWW-Authenticate %q: %v", rec.Header().Values("WWW-Authenticate"), err)
			}
			p := chs[0].Params
			if p["resource_metadata"] != "https://mcp.example.test"+auth.MetadataPath+"/mcp" || p["scope"] != "mcp:tools" || p["error"] != c.code {
				t.Errorf("challenge params %v", p)
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != c.code || body.Description == "" {
				t.Errorf("body %s, want error %q with a description", rec.Body, c.code)
			}
		})
	}
}

// TestPrincipalFromHeader: with Config.PrincipalHeader, the header names
// the request's principal, which binds sessions; without authentication
// sessions are bound to no principal.
func TestPrincipalFromHeader(t *testing.T) {
	g := &Gateway{cfg: Config{PrincipalHeader: "X-User"}.withDefaults()}
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("X-User", "alice")
	r2, ok := g.authenticate(httptest.NewRecorder(), r)
	if !ok || g.principal(r2) != "alice" {
		t.Fatalf("principal %q, %v; want alice", g.principal(r2), ok)
	}
	if !g.otherPrincipal(r2, "bob") || g.otherPrincipal(r2, "alice") {
		t.Error("otherPrincipal does not compare with the header's principal")
	}
	r3, ok := g.authenticate(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))
	if !ok || g.principal(r3) != "" {
		t.Fatalf("no header: principal %q, %v; want the anonymous one", g.principal(r3), ok)
	}
	if (&Gateway{}).otherPrincipal(r2, "bob") {
		t.Error("without authentication, sessions are not bound to principals")
	}
}
