package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MetadataPath is where protected resource metadata is served (RFC 9728
// §3), at the root and followed by the resource's path.
const MetadataPath = "/.well-known/oauth-protected-resource"

// ResourceMetadata describes a server as an OAuth 2.0 protected resource
// (RFC 9728). With a Resource set, the server serves the metadata document
// (see [Metadata]) and names its URL in every 401 and 403 challenge.
type ResourceMetadata struct {
	// Resource is the resource identifier: the canonical URL of the MCP
	// endpoint as clients reach it (for example
	// https://mcp.example.com/mcp), without a fragment. Required with a
	// [JWT]; tokens' audience is usually this URL.
	Resource string
	// AuthorizationServers are the issuer URLs of the authorization servers
	// that issue tokens for the resource (default, with a JWT, its
	// issuer).
	AuthorizationServers []string
	// ScopesSupported are the scopes clients may request for the resource
	// (default, with a JWT, its required scopes).
	ScopesSupported []string
}

// Metadata is a protected resource metadata document, ready to serve: an
// http.Handler for [MetadataPath] and [MetadataPath] followed by the
// resource's path (see Paths), which answers 404 for other paths and may
// be read from any origin (the document is public).
type Metadata struct {
	doc   []byte
	url   string   // the metadata URL for the resource, for challenges
	paths []string // the paths served: the root one and the resource's
}

// NewMetadata checks m and builds its document; a (the server's
// Authenticator, or nil) fills in the defaults a JWT implies. It returns
// nil and no error when m names no Resource and a needs none, and an error
// for a JWT without a Resource, a Resource that is not an absolute http(s)
// URL without a fragment, or an authorization server that is not an
// absolute URL.
func NewMetadata(m ResourceMetadata, a Authenticator) (*Metadata, error) {
	jwtAuth, _ := a.(*JWT)
	if m.Resource == "" {
		if jwtAuth != nil {
			return nil, errors.New("auth: JWT authentication needs ResourceMetadata.Resource, the canonical URL of the MCP endpoint")
		}
		return nil, nil
	}
	u, err := url.Parse(m.Resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || strings.Contains(m.Resource, "#") {
		return nil, fmt.Errorf("auth: resource %q is not an absolute http(s) URL without a fragment", m.Resource)
	}
	if jwtAuth != nil {
		if len(m.AuthorizationServers) == 0 {
			m.AuthorizationServers = []string{jwtAuth.Issuer()}
		}
		if len(m.ScopesSupported) == 0 {
			m.ScopesSupported = jwtAuth.RequiredScopes()
		}
	}
	if len(m.AuthorizationServers) == 0 {
		return nil, errors.New("auth: protected resource metadata needs at least one authorization server")
	}
	for _, as := range m.AuthorizationServers {
		if a, err := url.Parse(as); err != nil || a.Scheme == "" || a.Host == "" {
			return nil, fmt.Errorf("auth: authorization server %q is not an absolute URL", as)
		}
	}
	doc, err := json.Marshal(struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported,omitempty"`
		BearerMethods        []string `json:"bearer_methods_supported"`
	}{m.Resource, m.AuthorizationServers, m.ScopesSupported, []string{"header"}})
	if err != nil {
		return nil, fmt.Errorf("auth: encoding resource metadata: %w", err)
	}
	md := &Metadata{doc: doc, paths: []string{MetadataPath}}
	path, escaped := u.Path, u.EscapedPath()
	if path == "/" {
		path, escaped = "", ""
	}
	if path != "" {
		md.paths = append(md.paths, MetadataPath+path)
	}
	md.url = u.Scheme + "://" + u.Host + MetadataPath + escaped
	if u.RawQuery != "" {
		md.url += "?" + u.RawQuery
	}
	return md, nil
}

// URL is where clients find the document for the resource: what
// challenges name. It is "" for a nil Metadata.
func (m *Metadata) URL() string {
	if m == nil {
		return ""
	}
	return m.url
}

// Paths are the paths the document is served at: [MetadataPath], and
// MetadataPath followed by the resource's path when it has one.
func (m *Metadata) Paths() []string { return slices.Clone(m.paths) }

// ServeHTTP serves the document on GET and HEAD (and answers CORS
// preflights) at Paths, 404 elsewhere.
func (m *Metadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(m.paths, r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(m.doc)
}
