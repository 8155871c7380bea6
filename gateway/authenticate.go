package gateway

import (
	"net/http"

	"github.com/mcpstream/mcpstream/auth"
)

// authenticate runs the configured Authenticator (package auth) on r,
// before its body is read. It returns r, with the principal in its
// context, or false after answering the refusal (auth.Refuse).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if g.cfg.Auth == nil {
		return r, true
	}
	principal, err := g.cfg.Auth.Authenticate(r)
	if err != nil {
		noteUnauthorized(w)
		if ae, ok := err.(*auth.Error); ok {
			g.log.Debug("request refused", "status", ae.Status, "error", ae.Code, "err", ae.Err)
		} else {
			g.log.Error("authenticating a request", "err", err)
		}
		auth.Refuse(w, err, g.metadata.URL())
		return nil, false
	}
	if principal != "" {
		r = r.WithContext(auth.WithPrincipal(r.Context(), principal))
	}
	return r, true
}

// principal is the principal authenticate found for r ("" for none).
func (g *Gateway) principal(r *http.Request) string { return auth.Principal(r.Context()) }

// otherPrincipal reports whether r comes from another principal than
// owner's (only when requests are authenticated).
func (g *Gateway) otherPrincipal(r *http.Request, owner string) bool {
	return g.cfg.Auth != nil && g.principal(r) != owner
}

// ResourceMetadataHandler serves the protected resource metadata (RFC 9728)
// at auth.MetadataPath and at auth.MetadataPath followed by the resource's
// path; mount it on both (the second as a subtree: auth.MetadataPath+"/").
// It is nil when no ResourceMetadata.Resource is configured.
func (g *Gateway) ResourceMetadataHandler() http.Handler {
	if g.metadata == nil {
		return nil
	}
	return g.metadata
}
