package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// JWTOptions configure a [JWT]: where the authorization server
// publishes its signing keys, and what a token must say to be accepted.
type JWTOptions struct {
	// JWKSURL is the authorization server's JSON Web Key Set (its
	// jwks_uri). Required; https, or http on a loopback host.
	JWKSURL string
	// Issuer must equal the token's iss claim. Required.
	Issuer string
	// Audience must be one of the token's aud values: the token was issued
	// for this server (RFC 8707 resource indicators: usually the canonical
	// URL of the MCP endpoint). Values are compared exactly, but for the
	// case of a URI's scheme and host (HTTPS://MCP.example.com/mcp names
	// https://mcp.example.com/mcp, as the MCP authorization specification
	// asks). Required.
	Audience string
	// RequiredScopes must all be granted by the token, in its scope claim
	// (space-separated) or its scp claim (an array, or a space-separated
	// string). A token missing one is answered 403 insufficient_scope.
	RequiredScopes []string
	// RequireAccessTokenType, when set, accepts only tokens whose typ
	// header says they are JWT access tokens: at+jwt or
	// application/at+jwt, in any case (RFC 9068 §4), so that another JWT
	// of the same issuer for this audience (an ID token, a logout token)
	// is not taken for one. Others are answered 401 invalid_token. Off by
	// default: many authorization servers sign access tokens with typ JWT
	// or none.
	RequireAccessTokenType bool
	// PrincipalClaim names the string claim that identifies the caller
	// (default "sub").
	PrincipalClaim string
	// Algorithms lists the accepted signing algorithms (default RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA). Only
	// asymmetric algorithms may be named: "none" and HS* are refused.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 30s,
	// at most 5m).
	Leeway time.Duration
	// RefreshInterval is how often the key set is fetched again (default
	// 1h).
	RefreshInterval time.Duration
	// RefreshUnknownKID is the least time between two fetches caused by a
	// token naming an unknown key id, or naming none and verified by no
	// key held (default 1m): a key published after the last fetch is
	// found at once, and tokens with made-up key ids cannot make the
	// server hammer the authorization server. A token naming an unknown
	// key id when no such fetch is allowed for more than 5s is refused at
	// once (or, when the last fetch failed, answered 503). Such a fetch is not the request's: requests
	// naming unknown key ids meanwhile wait for the same fetch, each until
	// it ends or the request does, and it completes even when every
	// client waiting for it has gone.
	RefreshUnknownKID time.Duration
	// HTTPClient fetches the key set (default one with a 10s timeout; its
	// timeout, or 1m for a client without one, bounds each fetch).
	// Whatever client is given, a response larger than MaxJWKSBytes is
	// refused, and a redirect is followed only to a URL JWKSURL could be
	// (https, or http on a loopback host).
	HTTPClient *http.Client
	// MaxJWKSBytes bounds a key set response (default 1 MiB).
	MaxJWKSBytes int64
	// CacheSize bounds the validated tokens remembered, so that a token
	// presented again skips the signature check (default 10,000; negative
	// turns the cache off).
	CacheSize int
	// CacheTTL is the longest a validated token is remembered (default
	// 1m; never past its exp). It bounds how long a token signed by a key
	// since withdrawn from the key set is still accepted.
	CacheTTL time.Duration
	// Logger receives failed key set refreshes (default slog.Default()).
	Logger *slog.Logger
}

// asymmetricAlgorithms are the signing algorithms a JWT may use: those
// verified with a public key from the key set.
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// withDefaults fills the zero fields and checks the others; the error says
// which option is wrong.
func (o JWTOptions) withDefaults() (JWTOptions, error) {
	if o.Issuer == "" {
		return o, errors.New("auth: JWT authentication needs an issuer")
	}
	if o.Audience == "" {
		return o, errors.New("auth: JWT authentication needs an audience (tokens must have been issued for this server)")
	}
	if err := checkJWKSURL(o.JWKSURL); err != nil {
		return o, err
	}
	if o.PrincipalClaim == "" {
		o.PrincipalClaim = "sub"
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = asymmetricAlgorithms
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, a) {
			return o, fmt.Errorf("auth: JWT algorithm %q not accepted (have: %s)", a, strings.Join(asymmetricAlgorithms, ", "))
		}
	}
	switch {
	case o.Leeway <= 0:
		o.Leeway = 30 * time.Second
	case o.Leeway > 5*time.Minute:
		return o, fmt.Errorf("auth: JWT leeway %s is over 5m", o.Leeway)
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Hour
	}
	if o.RefreshUnknownKID <= 0 {
		o.RefreshUnknownKID = time.Minute
	}
	if o.MaxJWKSBytes <= 0 {
		o.MaxJWKSBytes = 1 << 20
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10_000
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = time.Minute
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if o.HTTPClient != nil {
		cp := *o.HTTPClient
		c = &cp
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = limitedTransport{base: base, max: o.MaxJWKSBytes}
	c.CheckRedirect = checkRedirect(c.CheckRedirect)
	o.HTTPClient = c
	return o, nil
}

// checkJWKSURL accepts an absolute https URL, or an http one on a loopback
// host (a key set fetched in clear over a network could be replaced).
func checkJWKSURL(s string) error {
	if s == "" {
		return errors.New("auth: JWT authentication needs a JWKS URL")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("auth: JWKS URL %q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || net.ParseIP(h).IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("auth: JWKS URL %q must be https (http only on a loopback host)", s)
}

// checkRedirect follows a key set's redirect only to a URL checkJWKSURL
// accepts (a redirect from https to plain http off loopback would let
// anyone on the path replace the keys), then as next decides (by default,
// at most 10 redirects).
func checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if err := checkJWKSURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirected: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// limitedTransport refuses response bodies over max bytes: the key set
// decoder reads whatever it is given.
type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("JWKS response too large: %d bytes, limit %d", resp.ContentLength, t.max)
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, t.max)
	return resp, nil
}
