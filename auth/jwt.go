package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWT is an OAuth 2.1 resource server's token validation: the bearer
// token must be a JWT signed by a key of the authorization server's key
// set with an accepted asymmetric algorithm, issued by the configured
// issuer for the configured audience, unexpired (exp is required), and
// must grant the required scopes. The principal is its PrincipalClaim.
//
// The key set is fetched at start, again every RefreshInterval, and when a
// token names a key id not in it (at most once per RefreshUnknownKID), so
// rotated keys are picked up at once.
type JWT struct {
	opts   JWTOptions
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	scopes scopeRule
	cache  *tokenCache
	stop   context.CancelFunc
}

// NewJWT fetches the key set and returns the authenticator; the key
// set is refreshed in the background until ctx ends or Close is called. It
// returns an error for invalid options (which option), or when the key set
// cannot be fetched, decoded, or holds no usable key.
func NewJWT(ctx context.Context, opts JWTOptions) (*JWT, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	scopes, err := newScopeRule(opts.RequiredScopes)
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
		return nil, fmt.Errorf("auth: loading the JWKS from %s: %w", opts.JWKSURL, oneLine{err})
	}
	keys, err := kf.Storage().KeyReadAll(ctx)
	if err == nil && len(keys) == 0 {
		err = errors.New("it holds no key this server can use")
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("auth: loading the JWKS from %s: %w", opts.JWKSURL, err)
	}
	return &JWT{
		opts: opts, kf: kf, stop: stop, scopes: scopes,
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
func (a *JWT) Close() { a.stop() }

// Issuer is the issuer tokens must name.
func (a *JWT) Issuer() string { return a.opts.Issuer }

// RequiredScopes are the scopes tokens must grant.
func (a *JWT) RequiredScopes() []string { return slices.Clone(a.opts.RequiredScopes) }

// Authenticate validates the request's bearer token and returns its
// principal claim; a token validated before is taken from the cache
// (JWTOptions.CacheSize). Errors are *Error: 401 with no code for a request
// without a bearer token, 400 invalid_request for a malformed
// Authorization header, 401 invalid_token for a token that fails
// validation, 403 insufficient_scope for a valid token lacking a required
// scope.
func (a *JWT) Authenticate(r *http.Request) (string, error) {
	token, aerr := bearerToken(r)
	if aerr != nil {
		aerr.Scope = a.scopes.challenge
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
	if e := a.scopes.check(grantedScopes(claims), "token"); e != nil {
		return "", e
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		a.cache.put(token, principal, exp.Add(a.opts.Leeway), now)
	}
	return principal, nil
}

func (a *JWT) invalid(desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: ErrCodeInvalidToken, Description: desc, Scope: a.scopes.challenge, Err: err}
}

// keyfunc finds the token's verification key in the key set (refreshing
// it, within ctx, for an unknown key id) and refuses any key but an
// asymmetric public key, whatever the key set holds.
func (a *JWT) keyfunc(ctx context.Context) jwt.Keyfunc {
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

// grantedScopes are the scopes a token grants, which scopeRule checks: its
// scope claim (space-separated) and its scp claim (an array, or
// space-separated).
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
