package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/mcpstream/mcpstream/schema"
)

// Authentication: every request on every transport passes through the
// configured [Authenticator] before its body is read. What it returns is
// the request's principal: sessions and tasks are bound to it, and the
// per-principal in-flight cap counts it.
//
// Refusals follow RFC 6750 §3: the HTTP status of the [AuthError], a
// WWW-Authenticate Bearer challenge naming the protected resource metadata
// (RFC 9728 §5.1) and the scopes required, and an OAuth-style JSON body,
// {"error": code, "error_description": text}. The MCP authorization
// specification leaves the body unspecified; this is the body the
// official TypeScript SDK's bearer middleware sends, and not a JSON-RPC
// error: the request was never read as one.

// Authenticator decides who is making a request, from its headers only
// (the body is not read yet). It returns the principal ("" for an
// anonymous request it lets through), or an error refusing the request: an
// *[AuthError] is answered with its status and a Bearer challenge; any
// other error means the authenticator could not decide (its key source is
// unreachable, say) and is answered 503 with Retry-After.
type Authenticator interface {
	Authenticate(r *http.Request) (principal string, err error)
}

// RFC 6750 §3.1 error codes.
const (
	ErrCodeInvalidRequest    = "invalid_request"
	ErrCodeInvalidToken      = "invalid_token"
	ErrCodeInsufficientScope = "insufficient_scope"
)

// AuthError refuses a request: HTTP 401 for missing, malformed or invalid
// credentials, 403 for a valid token lacking a required scope, 400 for a
// malformed Authorization header.
type AuthError struct {
	// Status is the HTTP status to answer with.
	Status int
	// Code is the RFC 6750 error code: empty when the request carried no
	// bearer token (the challenge then names no error), else one of
	// ErrCodeInvalidRequest, ErrCodeInvalidToken, ErrCodeInsufficientScope.
	Code string
	// Description is a short text for the client (printable ASCII, no
	// quotes or backslashes).
	Description string
	// Scope, if set, lists the scopes the resource requires,
	// space-separated; it goes into the challenge.
	Scope string
	// Err is the underlying cause, for logs; never sent to the client.
	Err error
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("auth: %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// challenge is the WWW-Authenticate value for e; metadataURL, if set, is
// the protected resource metadata's URL.
func (e *AuthError) challenge(metadataURL string) string {
	var params []string
	if e.Code != "" {
		params = append(params, `error="`+e.Code+`"`)
		if e.Description != "" {
			params = append(params, `error_description="`+quotable(e.Description)+`"`)
		}
	}
	if e.Scope != "" {
		params = append(params, `scope="`+quotable(e.Scope)+`"`)
	}
	if metadataURL != "" {
		params = append(params, `resource_metadata="`+quotable(metadataURL)+`"`)
	}
	if len(params) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(params, ", ")
}

// quotable drops what may not appear in an RFC 6750 quoted value.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// HeaderAuth trusts a header set by an authenticating proxy in front of
// the gateway (for example X-Auth-Request-User) to name the principal; an
// absent or empty header is the anonymous principal "". It never refuses a
// request. Only use it behind a proxy that sets the header and strips it
// from clients. Config.PrincipalHeader is a shorthand for it.
type HeaderAuth struct {
	Header string
}

// Authenticate returns the header's value.
func (h HeaderAuth) Authenticate(r *http.Request) (string, error) {
	return r.Header.Get(h.Header), nil
}

// bearerToken reads the token of the Authorization header, the only place
// a token is taken from (the MCP authorization specification forbids
// tokens in the query string). No header, or another scheme, is a 401
// naming no error (RFC 6750 §3.1: the client sent no bearer credentials);
// a malformed Bearer header is a 400 invalid_request.
func bearerToken(r *http.Request) (string, *AuthError) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", &AuthError{Status: http.StatusUnauthorized, Description: "a bearer token is required"}
	case 1:
	default:
		return "", &AuthError{Status: http.StatusBadRequest, Code: ErrCodeInvalidRequest, Description: "more than one Authorization header"}
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &AuthError{Status: http.StatusUnauthorized, Description: "only Bearer credentials are accepted"}
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t,") {
		return "", &AuthError{Status: http.StatusBadRequest, Code: ErrCodeInvalidRequest, Description: "malformed Bearer credentials"}
	}
	return token, nil
}

// JWTAuth is an OAuth 2.1 resource server's token validation: the bearer
// token must be a JWT signed by a key of the authorization server's key
// set with an accepted asymmetric algorithm, issued by the configured
// issuer for the configured audience, unexpired (exp is required), and
// must grant the required scopes. The principal is its PrincipalClaim.
//
// The key set is fetched at start, again every RefreshInterval, and when a
// token names a key id not in it (at most once per RefreshUnknownKID), so
// rotated keys are picked up at once.
type JWTAuth struct {
	opts   JWTOptions
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	scope  string // RequiredScopes, space-separated
	cache  *tokenCache
	stop   context.CancelFunc
}

// NewJWTAuth fetches the key set and returns the authenticator; the key
// set is refreshed in the background until ctx ends or Close is called. It
// returns an error for invalid options (which option), or when the key set
// cannot be fetched, decoded, or holds no usable key.
func NewJWTAuth(ctx context.Context, opts JWTOptions) (*JWTAuth, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	kctx, stop := context.WithCancel(ctx)
	strictFirstFetch := false
	kf, err := keyfunc.NewDefaultOverrideCtx(kctx, []string{opts.JWKSURL}, keyfunc.Override{
		Client:                    opts.HTTPClient,
		HTTPTimeout:               opts.HTTPClient.Timeout,
		NoErrorReturnFirstHTTPReq: &strictFirstFetch,
		RefreshInterval:           opts.RefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(opts.RefreshUnknownKID), 1),
		// Waiting for the limiter, then fetching, is bounded: a token
		// with an unknown key id is refused at once when no fetch is due.
		RateLimitWaitMax: 5 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("refreshing the JWKS failed; keeping the keys held", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("gateway: loading the JWKS from %s: %w", opts.JWKSURL, oneLine{err})
	}
	keys, err := kf.Storage().KeyReadAll(ctx)
	if err == nil && len(keys) == 0 {
		err = errors.New("it holds no key this server can use")
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("gateway: loading the JWKS from %s: %w", opts.JWKSURL, err)
	}
	return &JWTAuth{
		opts: opts, kf: kf, stop: stop,
		scope: strings.Join(opts.RequiredScopes, " "),
		cache: newTokenCache(opts.CacheSize, opts.CacheTTL),
		parser: jwt.NewParser(
			jwt.WithValidMethods(opts.Algorithms),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(opts.Leeway),
		),
	}, nil
}

// oneLine shows a joined error on one line.
type oneLine struct{ error }

func (e oneLine) Error() string { return strings.ReplaceAll(e.error.Error(), "\n", "; ") }
func (e oneLine) Unwrap() error { return e.error }

// Close stops refreshing the key set.
func (a *JWTAuth) Close() { a.stop() }

// Issuer is the issuer tokens must name.
func (a *JWTAuth) Issuer() string { return a.opts.Issuer }

// RequiredScopes are the scopes tokens must grant.
func (a *JWTAuth) RequiredScopes() []string { return slices.Clone(a.opts.RequiredScopes) }

// Authenticate validates the request's bearer token and returns its
// principal claim; a token validated before is taken from the cache
// (JWTOptions.CacheSize). Errors are *AuthError: 401 with no code for a request
// without a bearer token, 400 invalid_request for a malformed
// Authorization header, 401 invalid_token for a token that fails
// validation, 403 insufficient_scope for a valid token lacking a required
// scope.
func (a *JWTAuth) Authenticate(r *http.Request) (string, error) {
	token, aerr := bearerToken(r)
	if aerr != nil {
		aerr.Scope = a.scope
		return "", aerr
	}
	now := time.Now()
	if p, ok := a.cache.get(token, now); ok {
		return p, nil
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(token, claims, a.keyfunc(r.Context())); err != nil {
		return "", a.invalid(tokenProblem(err), err)
	}
	principal, _ := claims[a.opts.PrincipalClaim].(string)
	if principal == "" {
		return "", a.invalid("token has no "+a.opts.PrincipalClaim+" claim", nil)
	}
	if len(a.opts.RequiredScopes) > 0 {
		granted := grantedScopes(claims)
		for _, s := range a.opts.RequiredScopes {
			if !slices.Contains(granted, s) {
				return "", &AuthError{Status: http.StatusForbidden, Code: ErrCodeInsufficientScope,
					Description: "token lacks a required scope", Scope: a.scope}
			}
		}
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		a.cache.put(token, principal, exp.Add(a.opts.Leeway), now)
	}
	return principal, nil
}

func (a *JWTAuth) invalid(desc string, err error) *AuthError {
	return &AuthError{Status: http.StatusUnauthorized, Code: ErrCodeInvalidToken, Description: desc, Scope: a.scope, Err: err}
}

// keyfunc finds the token's verification key in the key set (refreshing
// it, within ctx, for an unknown key id) and refuses any key but an
// asymmetric public key, whatever the key set holds.
func (a *JWTAuth) keyfunc(ctx context.Context) jwt.Keyfunc {
	kf := a.kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		k, err := kf(t)
		if err != nil {
			return nil, err
		}
		if set, ok := k.(jwt.VerificationKeySet); ok {
			var pub jwt.VerificationKeySet
			for _, k := range set.Keys {
				if isPublicKey(k) {
					pub.Keys = append(pub.Keys, k)
				}
			}
			if len(pub.Keys) == 0 {
				return nil, errors.New("no public key in the key set")
			}
			return pub, nil
		}
		if !isPublicKey(k) {
			return nil, fmt.Errorf("key of type %T is not a public key", k)
		}
		return k, nil
	}
}

func isPublicKey(k any) bool {
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// tokenProblem is what the client is told about a token refused by the
// parser.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim (exp, iss, aud)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token was issued by another issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token was not issued for this resource"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signing key unknown"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature or algorithm not accepted"
	}
	return "token is invalid"
}

// grantedScopes are the scopes a token grants: its scope claim
// (space-separated) and its scp claim (an array, or space-separated).
func grantedScopes(c jwt.MapClaims) []string {
	var out []string
	if s, ok := c["scope"].(string); ok {
		out = append(out, strings.Fields(s)...)
	}
	switch v := c["scp"].(type) {
	case string:
		out = append(out, strings.Fields(v)...)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// principalKey keys the authenticated principal in a request's context.
type principalKey struct{}

// admit is the door of every transport: a request from an Origin not
// allowed is answered 403, then the request is authenticated. It returns r,
// with the principal in its context, or false after answering.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if !g.originAllowed(r.Header.Get("Origin")) {
		writeError(w, http.StatusForbidden, nil, schema.Errorf(schema.CodeInvalidRequest, "origin not allowed"))
		return nil, false
	}
	return g.authenticate(w, r)
}

// authenticate runs the configured Authenticator on r. It returns r, with
// the principal in its context, or false after answering the refusal.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if g.cfg.Auth == nil {
		return r, true
	}
	principal, err := g.cfg.Auth.Authenticate(r)
	if err != nil {
		noteUnauthorized(w)
		var ae *AuthError
		if !errors.As(err, &ae) {
			g.log.Error("authenticating a request", "err", err)
			w.Header().Set("Retry-After", "1")
			writeAuthBody(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot authenticate requests now")
			return nil, false
		}
		g.log.Debug("request refused", "status", ae.Status, "error", ae.Code, "err", ae.Err)
		var metadataURL string
		if g.resource != nil {
			metadataURL = g.resource.url
		}
		w.Header().Set("WWW-Authenticate", ae.challenge(metadataURL))
		writeAuthBody(w, ae.Status, ae.Code, ae.Description)
		return nil, false
	}
	if principal != "" {
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, principal))
	}
	return r, true
}

// principal is the principal authenticate found for r ("" for none).
func (g *Gateway) principal(r *http.Request) string {
	p, _ := r.Context().Value(principalKey{}).(string)
	return p
}

// otherPrincipal reports whether r comes from another principal than
// owner's (only when requests are authenticated).
func (g *Gateway) otherPrincipal(r *http.Request, owner string) bool {
	return g.cfg.Auth != nil && g.principal(r) != owner
}

// writeAuthBody writes an OAuth-style error body.
func writeAuthBody(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ResourceMetadataPath is where protected resource metadata is served
// (RFC 9728 §3), at the root and followed by the resource's path.
const ResourceMetadataPath = "/.well-known/oauth-protected-resource"

// ResourceMetadata describes the gateway as an OAuth 2.0 protected
// resource (RFC 9728). With a Resource set, the gateway serves the metadata
// document (see [Gateway.ResourceMetadataHandler]) and names its URL in
// every 401 and 403 challenge.
type ResourceMetadata struct {
	// Resource is the resource identifier: the canonical URL of the MCP
	// endpoint as clients reach it (for example
	// https://mcp.example.com/mcp), without a fragment. Required with a
	// [JWTAuth]; tokens' audience is usually this URL.
	Resource string
	// AuthorizationServers are the issuer URLs of the authorization servers
	// that issue tokens for the resource (default, with a JWTAuth, its
	// issuer).
	AuthorizationServers []string
	// ScopesSupported are the scopes clients may request for the resource
	// (default, with a JWTAuth, its required scopes).
	ScopesSupported []string
}

// resourceMetadata is the metadata served and the URL it is served at.
type resourceMetadata struct {
	doc   []byte
	url   string   // the metadata URL for the resource, for challenges
	paths []string // the paths served: the root one and the resource's
}

// buildResourceMetadata checks cfg's resource metadata and builds the
// document; nil when no resource is configured.
func buildResourceMetadata(cfg Config) (*resourceMetadata, error) {
	m := cfg.ResourceMetadata
	jwtAuth, _ := cfg.Auth.(*JWTAuth)
	if m.Resource == "" {
		if jwtAuth != nil {
			return nil, errors.New("gateway: JWT authentication needs ResourceMetadata.Resource, the canonical URL of the MCP endpoint")
		}
		return nil, nil
	}
	u, err := url.Parse(m.Resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || strings.Contains(m.Resource, "#") {
		return nil, fmt.Errorf("gateway: resource %q is not an absolute http(s) URL without a fragment", m.Resource)
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
		return nil, errors.New("gateway: protected resource metadata needs at least one authorization server")
	}
	for _, as := range m.AuthorizationServers {
		if a, err := url.Parse(as); err != nil || a.Scheme == "" || a.Host == "" {
			return nil, fmt.Errorf("gateway: authorization server %q is not an absolute URL", as)
		}
	}
	doc, err := json.Marshal(struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported,omitempty"`
		BearerMethods        []string `json:"bearer_methods_supported"`
	}{m.Resource, m.AuthorizationServers, m.ScopesSupported, []string{"header"}})
	if err != nil {
		return nil, err
	}
	rm := &resourceMetadata{doc: doc, paths: []string{ResourceMetadataPath}}
	path, escaped := u.Path, u.EscapedPath()
	if path == "/" {
		path, escaped = "", ""
	}
	if path != "" {
		rm.paths = append(rm.paths, ResourceMetadataPath+path)
	}
	rm.url = u.Scheme + "://" + u.Host + ResourceMetadataPath + escaped
	if u.RawQuery != "" {
		rm.url += "?" + u.RawQuery
	}
	return rm, nil
}

// ResourceMetadataHandler serves the protected resource metadata (RFC 9728)
// at ResourceMetadataPath and at ResourceMetadataPath followed by the
// resource's path; mount it on both (the second as a subtree:
// ResourceMetadataPath+"/"). It answers 404 for other paths, and any
// origin may read it (the document is public). It is nil when no
// ResourceMetadata.Resource is configured.
func (g *Gateway) ResourceMetadataHandler() http.Handler {
	rm := g.resource
	if rm == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(rm.paths, r.URL.Path) {
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
		_, _ = w.Write(rm.doc)
	})
}
