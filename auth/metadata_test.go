package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/MicahParks/jwkset"
)

func TestResourceMetadata(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "ec1", &ec.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RequiredScopes: []string{"mcp:tools"}})

	if _, err := NewMetadata(ResourceMetadata{}, a); err == nil {
		t.Error("JWT authentication without a resource accepted")
	}
	if _, err := NewMetadata(ResourceMetadata{Resource: testResource + "#frag"}, a); err == nil {
		t.Error("a resource with a fragment accepted")
	}
	if md, err := NewMetadata(ResourceMetadata{}, Header{Name: "X-User"}); md != nil || err != nil || md.URL() != "" {
		t.Errorf("no resource with Header = %v, %v; want none", md, err)
	}
	root, err := NewMetadata(ResourceMetadata{Resource: "https://mcp.example.test/"}, a)
	if err != nil || root.URL() != "https://mcp.example.test"+MetadataPath || len(root.Paths()) != 1 {
		t.Errorf("resource at the root: %+v, %v", root, err)
	}

	md, err := NewMetadata(ResourceMetadata{Resource: testResource}, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://mcp.example.test" + MetadataPath + "/mcp"; md.URL() != want {
		t.Errorf("metadata URL %q, want %q", md.URL(), want)
	}
	for _, path := range md.Paths() {
		rec := httptest.NewRecorder()
		md.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var doc struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
			BearerMethods        []string `json:"bearer_methods_supported"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if doc.Resource != testResource || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != testIss ||
			len(doc.ScopesSupported) != 1 || doc.ScopesSupported[0] != "mcp:tools" || len(doc.BearerMethods) != 1 || doc.BearerMethods[0] != "header" {
			t.Errorf("GET %s: %s", path, rec.Body)
		}
		if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: not readable cross-origin", path)
		}
	}
	if got := md.Paths(); len(got) != 2 || got[1] != MetadataPath+"/mcp" {
		t.Errorf("paths %v, want the root one and the resource's", got)
	}
	rec := httptest.NewRecorder()
	md.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetadataPath+"/other", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("metadata for another resource path: %d, want 404", rec.Code)
	}
}
