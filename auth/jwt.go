package auth

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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWT is an OAuth 2.1 resource server's token validation: the bearer
// token must be a JWT signed by a key of the authorization server's key
// set published for signatures (not one for encryption) with an accepted
// asymmetric algorithm, issued by the configured issuer for the
// configured audience, unexpired (exp is required), and must grant the
// required scopes. The principal is its PrincipalClaim.
//
// The key set is fetched at start, again every RefreshInterval, and when a
// token names a key id not in it, or names none and no key held verifies
// it (at most once per RefreshUnknownKID), so rotated keys are picked up
// at once. A fetch that fails, or finds no key this server can use, keeps
// the keys held. A fetch belongs to the authenticator, not to the request
// that caused it: the requests that need it wait for the same fetch, each
// only as long as its own context lasts, and a client that goes does not
// abort it.
type JWT struct {
	opts   JWTOptions
	log    *slog.Logger
	keys   *jwkset.MemoryJWKSet // the key set last fetched
	kf     keyfunc.Keyfunc      // reads keys
	parser *jwt.Parser
	scopes scopeRule
	cache  *tokenCache

	ctx     context.Context // ends at Close, ending the fetches
	stop    context.CancelFunc
	unknown *rate.Limiter // fetches for unknown key ids
	timeout time.Duration // bounds a fetch

	mu         sync.Mutex
	fetching   *keyFetch     // the fetch under way or due, nil when none
	fetched    atomic.Uint64 // fetches ended; changed under mu
	lastFailed atomic.Bool   // the last fetch to end failed; changed under mu
}

// keyFetch is one fetch of the key set, which any number of requests may
// wait for.
type keyFetch struct {
	done chan struct{} // closed when the fetch has ended
	err  error         // why it failed; set before done is closed
}

// unknownKIDWaitMax is the longest a fetch for an unknown key id is
// delayed to respect RefreshUnknownKID: a token naming an unknown key id
// is refused at once when no fetch is due sooner.
const unknownKIDWaitMax = 5 * time.Second

// errNoUsableKey says a key set fetched holds no key this server can use
// (of a supported type, for signatures): the keys held are kept.
var errNoUsableKey = errors.New("the JWKS holds no key this server can use")

// errCriticalHeader refuses a token whose header lists critical
// extensions ("crit"): this server understands none, and RFC 7515
// §4.1.11 makes such a JWS invalid to it.
var errCriticalHeader = errors.New(`token header lists critical extensions ("crit")`)

// errNotAccessToken refuses, with JWTOptions.RequireAccessTokenType, a
// token whose typ header does not say it is a JWT access token.
var errNotAccessToken = errors.New(`token type (typ) is not at+jwt`)

// errNoKeyForAlg says no key held may verify a token that names no key
// id: none is a public key for its algorithm.
var errNoKeyForAlg = errors.New("no public key in the key set for the token's algorithm")

// errKeySetUnavailable says the key set, fetched again for a token whose
// key is not held, could not be read: the token cannot be judged, and the
// request is answered 503, not 401.
var errKeySetUnavailable = errors.New("the JWKS could not be fetched")

// errFetchLimited says a fetch for an unknown key id was not made:
// another was made less than RefreshUnknownKID ago.
var errFetchLimited = errors.New("key set fetched too recently to fetch again")

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
	timeout := opts.HTTPClient.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	kctx, stop := context.WithCancel(ctx)
	a := &JWT{
		opts: opts, log: log, keys: jwkset.NewMemoryStorage(), scopes: scopes,
		cache: newTokenCache(opts.CacheSize, opts.CacheTTL),
		parser: jwt.NewParser(
			jwt.WithValidMethods(opts.Algorithms),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(opts.Leeway),
		),
		ctx: kctx, stop: stop, timeout: timeout,
		unknown: rate.NewLimiter(rate.Every(opts.RefreshUnknownKID), 1),
	}
	if err := a.fetch(); err != nil {
		stop()
		return nil, fmt.Errorf("auth: loading the JWKS from %s: %w", opts.JWKSURL, err)
	}
	a.kf, err = keyfunc.New(keyfunc.Options{Ctx: kctx, Storage: a.keys})
	if err != nil {
		stop()
		return nil, fmt.Errorf("auth: reading the JWKS: %w", err)
	}
	go a.refreshEvery(opts.RefreshInterval)
	return a, nil
}

// Close stops refreshing the key set, and ends a fetch under way.
func (a *JWT) Close() { a.stop() }

// refreshEvery fetches the key set every d until Close.
func (a *JWT) refreshEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			f, _ := a.startFetch(false, a.fetched.Load())
			select {
			case <-f.done:
			case <-a.ctx.Done():
				return
			}
		}
	}
}

// awaitFetch has the key set fetched again for a token naming an unknown
// key id, looked up when seen had fetches ended, and waits for the fetch
// until ctx ends. A fetch under way is joined; none is made when one ended
// since the lookup (the key set is to be read again) or when another was
// started less than RefreshUnknownKID ago (errFetchLimited); otherwise one
// is started, after waiting at most unknownKIDWaitMax for its turn. The
// fetch runs under the authenticator's context, not ctx: a request that
// goes does not abort it. The error wraps errKeySetUnavailable when the
// fetch failed, or none was made and the last one failed: the key set
// could not be read, and the token cannot be judged.
func (a *JWT) awaitFetch(ctx context.Context, seen uint64) error {
	f, err := a.startFetch(true, seen)
	if f == nil {
		if a.lastFailed.Load() {
			if err == nil {
				err = errors.New("the last fetch failed")
			}
			return fmt.Errorf("%w: %w", errKeySetUnavailable, err)
		}
		return err
	}
	select {
	case <-f.done:
		if f.err != nil {
			return fmt.Errorf("%w: %w", errKeySetUnavailable, f.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("request ended while the key set was fetched: %w", context.Cause(ctx))
	}
}

// startFetch returns the fetch under way, or starts one unless a fetch
// ended since seen fetches had (then it returns nil, nil); for an unknown
// key id (limited) only as RefreshUnknownKID allows.
func (a *JWT) startFetch(limited bool, seen uint64) (*keyFetch, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fetching != nil {
		return a.fetching, nil
	}
	if a.fetched.Load() != seen {
		return nil, nil
	}
	var delay time.Duration
	if limited {
		r := a.unknown.Reserve()
		if delay = r.Delay(); delay > unknownKIDWaitMax {
			r.Cancel()
			return nil, errFetchLimited
		}
	}
	f := &keyFetch{done: make(chan struct{})}
	a.fetching = f
	go a.runFetch(f, delay)
	return f, nil
}

// runFetch fetches the key set after delay, logs a failure, and ends f.
func (a *JWT) runFetch(f *keyFetch, delay time.Duration) {
	var err error
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-a.ctx.Done():
			t.Stop()
			err = fmt.Errorf("authenticator closed: %w", context.Cause(a.ctx))
		}
	}
	if err == nil {
		if err = a.fetch(); err != nil {
			a.log.Warn("refreshing the JWKS failed; keeping the keys held", "url", a.opts.JWKSURL, "err", err)
		}
	}
	a.mu.Lock()
	a.fetching = nil
	a.lastFailed.Store(err != nil)
	a.fetched.Add(1)
	a.mu.Unlock()
	f.err = err
	close(f.done)
}

// fetch reads the key set and replaces the keys held with its keys (those
// of a type this server supports, published for signatures, RSA keys of
// 2048 bits or more: a shorter one is logged and left out), within the
// HTTP client's timeout and until Close. On failure the keys held are
// kept: when the key set cannot be fetched or decoded, and when it holds
// no key this server can use (errNoUsableKey), which no token could pass.
func (a *JWT) fetch() error {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.JWKSURL, nil)
	if err != nil {
		return fmt.Errorf("fetching the JWKS: %w", err)
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the JWKS: HTTP status %d", resp.StatusCode)
	}
	var set jwkset.JWKSMarshal
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("decoding the JWKS: %w", err)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		if !forSignatures(m) {
			continue
		}
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		switch {
		case errors.Is(err, jwkset.ErrUnsupportedKey):
			continue
		case err != nil:
			return fmt.Errorf("decoding the JWKS: key %q: %w", m.KID, err)
		}
		if bits, short := shortRSAKey(k.Key()); short {
			a.log.Warn("ignoring an RSA key of the JWKS shorter than 2048 bits", "url", a.opts.JWKSURL, "kid", m.KID, "bits", bits)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return errNoUsableKey
	}
	if err := a.keys.KeyReplaceAll(ctx, keys); err != nil {
		return fmt.Errorf("storing the JWKS: %w", err)
	}
	return nil
}

// forSignatures reports whether a key of the key set may verify
// signatures (RFC 7517 §4.2, §4.3): its "use", when given, is "sig", and
// its "key_ops", when given, hold "verify". A key published for
// encryption never verifies a token.
func forSignatures(m jwkset.JWKMarshal) bool {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return false
	}
	return len(m.KEYOPS) == 0 || slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify)
}

// minRSABits is the shortest RSA key that verifies a token: RFC 7518 §3.3
// and §3.5 require 2048 bits or more for RS* and PS*.
const minRSABits = 2048

// shortRSAKey reports whether k is an RSA key shorter than minRSABits,
// and its length.
func shortRSAKey(k any) (bits int, short bool) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		bits = k.N.BitLen()
	case *rsa.PrivateKey:
		bits = k.N.BitLen()
	default:
		return 0, false
	}
	return bits, bits < minRSABits
}

// Issuer is the issuer tokens must name.
func (a *JWT) Issuer() string { return a.opts.Issuer }

// RequiredScopes are the scopes tokens must grant.
func (a *JWT) RequiredScopes() []string { return slices.Clone(a.opts.RequiredScopes) }

// Authenticate validates the request's bearer token and returns its
// principal claim; a token validated before is taken from the cache
// (JWTOptions.CacheSize). Refusals are *Error: 401 with no code for a
// request without a bearer token, 400 invalid_request for a malformed
// Authorization header, 401 invalid_token for a token that fails
// validation, 403 insufficient_scope for a valid token lacking a required
// scope. A token signed by a key not held, while the key set cannot be
// fetched (the fetch made for it failed, or the last one did), is not
// refused but undecided: the error is not an *Error, and [Refuse] answers
// it 503 with Retry-After.
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
	claims, err := a.parse(r.Context(), token)
	if errors.Is(err, errKeySetUnavailable) {
		return "", fmt.Errorf("auth: verifying a token whose key is not held: %w", err)
	}
	if err != nil {
		return "", a.invalid(tokenProblem(err), err)
	}
	if e := a.checkAudience(claims); e != nil {
		return "", e
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

// parse verifies token and returns its claims, or the parser's error. A
// token naming no key id that no key held verifies may be signed by a key
// published since: the key set is fetched again, as for an unknown key id
// (awaitFetch, within RefreshUnknownKID), and the token verified once
// more.
func (a *JWT) parse(ctx context.Context, token string) (jwt.MapClaims, error) {
	seen := a.fetched.Load()
	claims := jwt.MapClaims{}
	t, err := a.parser.ParseWithClaims(token, claims, a.keyfunc(ctx))
	if err == nil || !a.unverifiedNoKID(t, err) {
		return claims, err
	}
	if ferr := a.awaitFetch(ctx, seen); ferr != nil {
		return claims, errors.Join(err, ferr)
	}
	claims = jwt.MapClaims{}
	_, err = a.parser.ParseWithClaims(token, claims, a.keyfunc(ctx))
	return claims, err
}

// unverifiedNoKID reports whether err refuses t, which names no key id and
// an accepted algorithm, only because no key held verifies its signature
// (or none is for its algorithm).
func (a *JWT) unverifiedNoKID(t *jwt.Token, err error) bool {
	if t == nil || !errors.Is(err, jwt.ErrTokenSignatureInvalid) && !errors.Is(err, errNoKeyForAlg) {
		return false
	}
	if _, ok := t.Header["kid"]; ok {
		return false
	}
	alg, _ := t.Header["alg"].(string)
	return slices.Contains(a.opts.Algorithms, alg)
}

// checkAudience returns nil when one of the token's aud values names
// this server's Audience (sameResource), else a 401 invalid_token *Error.
func (a *JWT) checkAudience(c jwt.MapClaims) *Error {
	aud, err := c.GetAudience()
	if err != nil {
		return a.invalid("token is malformed", err)
	}
	if len(aud) == 0 {
		return a.invalid("token lacks a required claim (exp, iss, aud)", jwt.ErrTokenRequiredClaimMissing)
	}
	for _, v := range aud {
		if sameResource(v, a.opts.Audience) {
			return nil
		}
	}
	return a.invalid("token was not issued for this resource", jwt.ErrTokenInvalidAudience)
}

// sameResource reports whether two audiences name the same resource: they
// are equal, or are URIs equal but for the case of their scheme and host,
// which the MCP authorization specification asks servers to accept
// (RFC 3986 §6.2.2.1: neither is case-sensitive). Path, query and
// everything else are compared exactly.
func sameResource(a, b string) bool {
	if a == b {
		return true
	}
	as, arest, ok := strings.Cut(a, "://")
	bs, brest, ok2 := strings.Cut(b, "://")
	if !ok || !ok2 || !strings.EqualFold(as, bs) {
		return false
	}
	ai := strings.IndexAny(arest+"/", "/?#")
	bi := strings.IndexAny(brest+"/", "/?#")
	return strings.EqualFold(arest[:ai], brest[:bi]) && arest[ai:] == brest[bi:]
}

func (a *JWT) invalid(desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: ErrCodeInvalidToken, Description: desc, Scope: a.scopes.challenge, Err: err}
}

// keyfunc finds the token's verification key in the key set (fetching it
// again for an unknown key id, waiting for that until ctx ends) and
// refuses any key but an asymmetric public key, whatever the key set
// holds. A token whose header has "crit" is refused first
// (errCriticalHeader), and, with RequireAccessTokenType, one whose typ is
// not at+jwt (errNotAccessToken).
func (a *JWT) keyfunc(ctx context.Context) jwt.Keyfunc {
	kf := a.kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCriticalHeader
		}
		if a.opts.RequireAccessTokenType && !isAccessTokenType(t.Header["typ"]) {
			return nil, errNotAccessToken
		}
		seen := a.fetched.Load()
		k, err := kf(t)
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			ferr := a.awaitFetch(ctx, seen)
			if k, err = kf(t); err != nil && ferr != nil {
				err = errors.Join(err, ferr)
			}
		}
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
				return nil, errNoKeyForAlg
			}
			return pub, nil
		}
		if !isPublicKey(k) {
			return nil, fmt.Errorf("key of type %T is not a public key", k)
		}
		return k, nil
	}
}

// isAccessTokenType reports whether a typ header value names a JWT access
// token (RFC 9068 §2.1): at+jwt, or its media type application/at+jwt,
// compared without regard to case (RFC 7515 §4.1.9).
func isAccessTokenType(typ any) bool {
	s, ok := typ.(string)
	return ok && (strings.EqualFold(s, "at+jwt") || strings.EqualFold(s, "application/at+jwt"))
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
	case errors.Is(err, errCriticalHeader):
		return "token header lists critical extensions, none supported"
	case errors.Is(err, errNotAccessToken):
		return "token is not an access token (typ must be at+jwt)"
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
