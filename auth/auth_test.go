package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestRefuse: an *Error is answered with its status, a challenge naming the
// metadata and an OAuth body; any other error with 503 and Retry-After.
func TestRefuse(t *testing.T) {
	rec := httptest.NewRecorder()
	Refuse(rec, &Error{Status: 401, Code: ErrCodeInvalidToken, Description: "token is expired", Scope: "mcp:tools"}, "https://mcp.example.test"+MetadataPath)
	chs, err := oauthex.ParseWWWAuthenticate(rec.Header().Values("WWW-Authenticate"))
	if rec.Code != 401 || err != nil || len(chs) != 1 || chs[0].Params["error"] != ErrCodeInvalidToken ||
		chs[0].Params["scope"] != "mcp:tools" || chs[0].Params["resource_metadata"] != "https://mcp.example.test"+MetadataPath {
		t.Errorf("refusal: %d %q %v", rec.Code, rec.Header().Values("WWW-Authenticate"), err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error != ErrCodeInvalidToken || body.Description != "token is expired" ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("refusal body %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	Refuse(rec, errors.New("key set unreachable"), "")
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" ||
		json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error != "temporarily_unavailable" {
		t.Errorf("undecided: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

// TestHeader: the trusted header names the principal; none is the
// anonymous principal, never a refusal. The principal travels in a
// context.
func TestHeader(t *testing.T) {
	h := Header{Name: "X-User"}
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("X-User", "alice")
	if p, err := h.Authenticate(r); err != nil || p != "alice" {
		t.Fatalf("principal %q, %v; want alice", p, err)
	}
	if p, err := h.Authenticate(httptest.NewRequest(http.MethodPost, "/mcp", nil)); err != nil || p != "" {
		t.Fatalf("no header: principal %q, %v; want the anonymous one", p, err)
	}
	if got := Principal(WithPrincipal(context.Background(), "alice")); got != "alice" {
		t.Errorf("Principal = %q", got)
	}
	if got := Principal(context.Background()); got != "" {
		t.Errorf("Principal of a bare context = %q", got)
	}
}
