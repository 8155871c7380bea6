package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

const (
	testIss      = "https://auth.example.test"
	testAud      = "https://mcp.example.test/mcp"
	testResource = testAud
)

// testIssuer is an authorization server's key set on real HTTP: the keys
// published can change while authenticators fetch it.
type testIssuer struct {
	keys    *jwkset.MemoryJWKSet
	fetches atomic.Int32
	gate    atomic.Pointer[fetchGate]
	failing atomic.Bool // the key set is answered 503 while set
	srv     *httptest.Server
}

// fetchGate holds the key set's fetches: each waits until release is
// closed (or its client goes), and arrived is closed when the first comes.
type fetchGate struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// hold makes the key set's fetches wait from now on until the gate
// returned is released.
func (iss *testIssuer) hold() *fetchGate {
	g := &fetchGate{arrived: make(chan struct{}), release: make(chan struct{})}
	iss.gate.Store(g)
	return g
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{keys: jwkset.NewMemoryStorage()}
	iss.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss.fetches.Add(1)
		if iss.failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if g := iss.gate.Load(); g != nil {
			g.once.Do(func() { close(g.arrived) })
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		testkit.JWKSHandler(iss.keys).ServeHTTP(w, r)
	}))
	t.Cleanup(iss.srv.Close)
	return iss
}

// publish adds a public key to the key set under kid.
func (iss *testIssuer) publish(t testing.TB, kid string, pub any, alg jwkset.ALG) {
	t.Helper()
	testkit.PublishKey(t, iss.keys, pub, jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig})
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a token; kid "" leaves the header without one.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are a valid token's claims, changed by kv (a nil value deletes).
func claims(kv ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": testIss, "aud": testAud, "sub": "alice", "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "scope": "mcp:tools profile"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func newTestAuth(t testing.TB, o JWTOptions) *JWT {
	t.Helper()
	if o.Issuer == "" {
		o.Issuer = testIss
	}
	if o.Audience == "" {
		o.Audience = testAud
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := NewJWT(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func authRequest(authorization ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	for _, v := range authorization {
		r.Header.Add("Authorization", v)
	}
	return r
}

func authError(t *testing.T, err error) *Error {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return ae
}

func TestJWT(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "ec1", &ec.PublicKey, jwkset.AlgES256)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss.publish(t, "rsa1", &rsaKey.PublicKey, jwkset.AlgRS256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RequiredScopes: []string{"mcp:tools"}})

	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	other := ecKey(t)
	es := func(c jwt.MapClaims) string { return "Bearer " + sign(t, jwt.SigningMethodES256, ec, "ec1", c) }
	now := time.Now()

	accepted := []struct {
		name, auth, principal string
	}{
		{"ES256", es(claims()), "alice"},
		{"RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, "rsa1", claims("sub", "bob")), "bob"},
		{"no kid: every key is tried", "Bearer " + sign(t, jwt.SigningMethodES256, ec, "", claims()), "alice"},
		{"audience among several", es(claims("aud", []string{"https://other.test", testAud})), "alice"},
		{"scope in an scp array", es(claims("scope", nil, "scp", []string{"profile", "mcp:tools"})), "alice"},
		{"expired within the leeway", es(claims("exp", now.Add(-10*time.Second).Unix())), "alice"},
		{"scheme in lower case", "bearer " + sign(t, jwt.SigningMethodES256, ec, "ec1", claims()), "alice"},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(authRequest(c.auth))
			if err != nil || p != c.principal {
				t.Fatalf("Authenticate = %q, %v; want %q", p, err, c.principal)
			}
		})
	}

	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	hs.Header["kid"] = "rsa1"
	hsPEM, err := hs.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	hsDER, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims()).SignedString(der)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	query := authRequest()
	query.URL.RawQuery = "access_token=" + strings.TrimPrefix(es(claims()), "Bearer ")

	refused := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"wrong issuer", authRequest(es(claims("iss", "https://evil.test"))), 401, ErrCodeInvalidToken},
		{"no issuer", authRequest(es(claims("iss", nil))), 401, ErrCodeInvalidToken},
		{"wrong audience", authRequest(es(claims("aud", "https://other.test/mcp"))), 401, ErrCodeInvalidToken},
		{"no audience", authRequest(es(claims("aud", nil))), 401, ErrCodeInvalidToken},
		{"expired", authRequest(es(claims("exp", now.Add(-2*time.Minute).Unix()))), 401, ErrCodeInvalidToken},
		{"no exp", authRequest(es(claims("exp", nil))), 401, ErrCodeInvalidToken},
		{"not valid yet", authRequest(es(claims("nbf", now.Add(5*time.Minute).Unix()))), 401, ErrCodeInvalidToken},
		{"signed by another key under a known kid", authRequest("Bearer " + sign(t, jwt.SigningMethodES256, other, "ec1", claims())), 401, ErrCodeInvalidToken},
		{"signed by another key, no kid", authRequest("Bearer " + sign(t, jwt.SigningMethodES256, other, "", claims())), 401, ErrCodeInvalidToken},
		{"alg none", authRequest("Bearer " + none), 401, ErrCodeInvalidToken},
		{"HS256 keyed with the public key PEM", authRequest("Bearer " + hsPEM), 401, ErrCodeInvalidToken},
		{"HS256 keyed with the public key DER, no kid", authRequest("Bearer " + hsDER), 401, ErrCodeInvalidToken},
		{"no sub", authRequest(es(claims("sub", nil))), 401, ErrCodeInvalidToken},
		{"sub not a string", authRequest(es(claims("sub", 42))), 401, ErrCodeInvalidToken},
		{"not a JWT", authRequest("Bearer abc.def"), 401, ErrCodeInvalidToken},
		{"missing required scope", authRequest(es(claims("scope", "profile"))), 403, ErrCodeInsufficientScope},
		{"scope only as a prefix", authRequest(es(claims("scope", "mcp:tools:read"))), 403, ErrCodeInsufficientScope},
		{"no Authorization header", authRequest(), 401, ""},
		{"token only in the query string", query, 401, ""},
		{"Basic credentials", authRequest("Basic YWxpY2U6c2VjcmV0"), 401, ""},
		{"Bearer with nothing", authRequest("Bearer"), 400, ErrCodeInvalidRequest},
		{"Bearer with spaces only", authRequest("Bearer   "), 400, ErrCodeInvalidRequest},
		{"two tokens", authRequest(es(claims()), es(claims())), 400, ErrCodeInvalidRequest},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(c.req)
			if err == nil {
				t.Fatalf("accepted as %q", p)
			}
			ae := authError(t, err)
			if ae.Status != c.status || ae.Code != c.code {
				t.Fatalf("refused %d %q (%v), want %d %q", ae.Status, ae.Code, ae, c.status, c.code)
			}
			if ae.Scope != "mcp:tools" {
				t.Errorf("scope %q, want the required scopes", ae.Scope)
			}
			chs, err := oauthex.ParseWWWAuthenticate([]string{ae.Challenge(testIss + MetadataPath)})
			if err != nil || len(chs) != 1 || !strings.EqualFold(chs[0].Scheme, "Bearer") {
				t.Fatalf("challenge %q parses as %+v, %v", ae.Challenge(""), chs, err)
			}
			if got := chs[0].Params["error"]; got != c.code {
				t.Errorf("challenge error=%q, want %q", got, c.code)
			}
			if got := chs[0].Params["resource_metadata"]; got != testIss+MetadataPath {
				t.Errorf("challenge resource_metadata=%q", got)
			}
			if _, ok := chs[0].Params["error_description"]; ok != (c.code != "") {
				t.Errorf("challenge %q: error_description present %v, want %v", ae.Challenge(""), ok, c.code != "")
			}
		})
	}
}

func TestJWTPrincipalClaimAndAlgorithms(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "ec1", &ec.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, PrincipalClaim: "email", Algorithms: []string{"RS256"}})
	tok := sign(t, jwt.SigningMethodES256, ec, "ec1", claims("email", "alice@example.test"))
	if _, err := a.Authenticate(authRequest("Bearer " + tok)); authError(t, err).Code != ErrCodeInvalidToken {
		t.Fatalf("an ES256 token accepted by an RS256-only authenticator")
	}
	b := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, PrincipalClaim: "email"})
	if p, err := b.Authenticate(authRequest("Bearer " + tok)); err != nil || p != "alice@example.test" {
		t.Fatalf("Authenticate = %q, %v; want the email claim", p, err)
	}
}

// TestJWTKeyRotation: a key published after the authenticator fetched
// the key set is found when a token names it; fetches caused by unknown
// key ids are rate-limited and do not make requests wait.
func TestJWTKeyRotation(t *testing.T) {
	iss := newTestIssuer(t)
	k1, k2, k3 := ecKey(t), ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)

	// Refreshes on unknown kids allowed every millisecond: the token is
	// refused while its key is unpublished, accepted once it is.
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RefreshUnknownKID: time.Millisecond})
	tok2 := "Bearer " + sign(t, jwt.SigningMethodES256, k2, "k2", claims())
	before := iss.fetches.Load()
	if _, err := a.Authenticate(authRequest(tok2)); authError(t, err).Code != ErrCodeInvalidToken {
		t.Fatal("a token for an unpublished key was not refused as invalid_token")
	}
	if n := iss.fetches.Load(); n != before+1 {
		t.Fatalf("%d key set fetches for an unknown kid, want 1", n-before)
	}
	iss.publish(t, "k2", &k2.PublicKey, jwkset.AlgES256)
	if p, err := a.Authenticate(authRequest(tok2)); err != nil || p != "alice" {
		t.Fatalf("after rotation: Authenticate = %q, %v", p, err)
	}
	if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k1, "k1", claims()))); err != nil || p != "alice" {
		t.Fatalf("the first key after rotation: Authenticate = %q, %v", p, err)
	}

	// The default limit (one refresh a minute): the first unknown kid
	// refreshes, the next is refused at once without fetching.
	b := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	iss.publish(t, "k3", &k3.PublicKey, jwkset.AlgES256)
	before = iss.fetches.Load()
	if p, err := b.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k3, "k3", claims()))); err != nil || p != "alice" {
		t.Fatalf("a key published after start: Authenticate = %q, %v", p, err)
	}
	start := time.Now()
	for i := range 5 {
		unknown := "Bearer " + sign(t, jwt.SigningMethodES256, k3, "made-up-"+string(rune('a'+i)), claims())
		if _, err := b.Authenticate(authRequest(unknown)); authError(t, err).Code != ErrCodeInvalidToken {
			t.Fatal("a made-up kid was not refused as invalid_token")
		}
	}
	if n := iss.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key set fetches for 6 unknown kids within the rate limit, want 1", n)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("refusing 5 made-up kids took %s: requests waited for the rate limiter", d)
	}
}

// TestJWTKeyRotationClientGone: a client that names a made-up key id and
// goes while the key set is being fetched does not abort the fetch (which
// would spend the allowance of one fetch a minute for nothing, so that a
// key published since could not be found for a minute): the client is
// answered at once, the fetch completes, and a token signed by a key the
// authorization server published meanwhile is accepted, with no further
// fetch.
func TestJWTKeyRotationClientGone(t *testing.T) {
	iss := newTestIssuer(t)
	k1, k2 := ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL}) // one fetch a minute for unknown key ids
	before := iss.fetches.Load()

	gate := iss.hold()
	ctx, cancel := context.WithCancel(t.Context())
	garbage := authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k1, "made-up", claims())).WithContext(ctx)
	refused := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(garbage)
		refused <- err
	}()
	<-gate.arrived // the key set is being fetched for the made-up kid
	cancel()       // and the client goes
	select {
	case err := <-refused:
		if authError(t, err).Code != ErrCodeInvalidToken {
			t.Fatalf("the made-up kid's request was answered %v, want invalid_token", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request whose client went still waits for the key set fetch")
	}

	// The authorization server rotates its key, then answers the fetch.
	iss.publish(t, "k2", &k2.PublicKey, jwkset.AlgES256)
	close(gate.release)
	if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k2, "k2", claims()))); err != nil || p != "alice" {
		t.Fatalf("a token signed by the new key: Authenticate = %q, %v", p, err)
	}
	if n := iss.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key set fetches for the made-up kid and the new key, want 1", n)
	}
}

// TestJWTKeyFetchShared: requests naming a key id not yet fetched, while
// the key set is being fetched for one of them, wait for that fetch
// rather than each making its own, however often fetches are allowed.
func TestJWTKeyFetchShared(t *testing.T) {
	iss := newTestIssuer(t)
	k1, k2 := ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RefreshUnknownKID: time.Millisecond})
	before := iss.fetches.Load()

	gate := iss.hold()
	tok := authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k2, "k2", claims())).Header.Get("Authorization")
	const n = 8
	errs := make(chan error, n)
	auth := func() {
		p, err := a.Authenticate(authRequest(tok))
		if err == nil && p != "alice" {
			err = errors.New("principal " + p)
		}
		errs <- err
	}
	go auth()
	<-gate.arrived // the key set is being fetched for the first request
	for range n - 1 {
		go auth()
	}
	iss.publish(t, "k2", &k2.PublicKey, jwkset.AlgES256)
	close(gate.release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a token signed by the key being fetched: %v", err)
		}
	}
	if got := iss.fetches.Load() - before; got != 1 {
		t.Fatalf("%d key set fetches for %d requests naming the same new key, want 1", got, n)
	}
}

func TestNewJWTErrors(t *testing.T) {
	iss := newTestIssuer(t) // publishes nothing
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer failing.Close()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2<<10) + `]}`))
	}))
	defer big.Close()
	for _, c := range []struct {
		name string
		o    JWTOptions
		want string
	}{
		{"no JWKS URL", JWTOptions{Issuer: testIss, Audience: testAud}, "JWKS URL"},
		{"no issuer", JWTOptions{JWKSURL: iss.srv.URL, Audience: testAud}, "issuer"},
		{"no audience", JWTOptions{JWKSURL: iss.srv.URL, Issuer: testIss}, "audience"},
		{"plain http off loopback", JWTOptions{JWKSURL: "http://keys.example.test/jwks", Issuer: testIss, Audience: testAud}, "https"},
		{"HS256 allowed", JWTOptions{JWKSURL: iss.srv.URL, Issuer: testIss, Audience: testAud, Algorithms: []string{"HS256"}}, "HS256"},
		{"none allowed", JWTOptions{JWKSURL: iss.srv.URL, Issuer: testIss, Audience: testAud, Algorithms: []string{"none"}}, "none"},
		{"empty key set", JWTOptions{JWKSURL: iss.srv.URL, Issuer: testIss, Audience: testAud}, "no key"},
		{"key set server failing", JWTOptions{JWKSURL: failing.URL, Issuer: testIss, Audience: testAud}, "500"},
		{"key set too large", JWTOptions{JWKSURL: big.URL, Issuer: testIss, Audience: testAud, MaxJWKSBytes: 1 << 10}, "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := NewJWT(t.Context(), c.o)
			if err == nil {
				a.Close()
				t.Fatal("NewJWT succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestJWTEncryptionKeyNotForSignatures: a key the key set publishes for
// encryption ("use": "enc", or "key_ops" without "verify") never verifies
// a token's signature (RFC 7517 §4.2, §4.3), whether the token names it
// by key id or names none; keys marked "sig", and keys with neither
// "use" nor "key_ops", do.
func TestJWTEncryptionKeyNotForSignatures(t *testing.T) {
	iss := newTestIssuer(t)
	sig, enc, ops, plain := ecKey(t), ecKey(t), ecKey(t), ecKey(t)
	iss.publish(t, "sig", &sig.PublicKey, jwkset.AlgES256)
	for kid, m := range map[string]jwkset.JWKMetadataOptions{
		"enc":   {KID: "enc", USE: jwkset.UseEnc},
		"ops":   {KID: "ops", KEYOPS: []jwkset.KEYOPS{jwkset.KeyOpsEncrypt}},
		"plain": {KID: "plain"},
	} {
		k := map[string]*ecdsa.PrivateKey{"enc": enc, "ops": ops, "plain": plain}[kid]
		jwk, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: m})
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.keys.KeyWrite(t.Context(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	for _, c := range []struct {
		name, kid string
		key       *ecdsa.PrivateKey
		ok        bool
	}{
		{"signing key", "sig", sig, true},
		{"key without use", "plain", plain, true},
		{"key without use, no kid", "", plain, true},
		{"encryption key", "enc", enc, false},
		{"encryption key, no kid", "", enc, false},
		{"key for encrypting only", "ops", ops, false},
		{"key for encrypting only, no kid", "", ops, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, c.key, c.kid, claims())))
			if !c.ok {
				if err == nil {
					t.Fatalf("a token signed by an encryption key was accepted as %q", p)
				}
				if ae := authError(t, err); ae.Status != http.StatusUnauthorized || ae.Code != ErrCodeInvalidToken {
					t.Fatalf("refused %d %q, want 401 invalid_token", ae.Status, ae.Code)
				}
				return
			}
			if err != nil || p != "alice" {
				t.Fatalf("Authenticate = %q, %v; want alice", p, err)
			}
		})
	}
}

// TestJWTEmptyKeySetKeepsKeys: a refresh that finds no key this server can
// use (the authorization server answering an empty set, or only keys for
// encryption, during a faulty deploy say) is a failed refresh: the keys
// held are kept, as for an unreachable key set, rather than replaced by
// none, which would refuse every token until a later refresh.
func TestJWTEmptyKeySetKeepsKeys(t *testing.T) {
	iss := newTestIssuer(t)
	k1, enc := ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RefreshInterval: 20 * time.Millisecond, CacheSize: -1})
	if _, err := iss.keys.KeyDelete(t.Context(), "k1"); err != nil {
		t.Fatal(err)
	}
	encJWK, err := jwkset.NewJWKFromKey(&enc.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "enc", USE: jwkset.UseEnc}})
	if err != nil {
		t.Fatal(err)
	}
	for _, published := range []string{"no key", "only a key for encryption"} {
		if published != "no key" {
			if err := iss.keys.KeyWrite(t.Context(), encJWK); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(published, func(t *testing.T) {
			before := iss.fetches.Load()
			testkit.Eventually(t, "two refreshes", 10*time.Second, func() bool { return iss.fetches.Load() >= before+2 })
			for _, kid := range []string{"k1", ""} {
				if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k1, kid, claims()))); err != nil || p != "alice" {
					t.Fatalf("kid %q after the key set was refreshed with %s: Authenticate = %q, %v; want the keys held kept", kid, published, p, err)
				}
			}
		})
	}
}

// TestJWTKeySetRedirect: a key set URL that redirects is followed only to
// a URL the key set could have been configured with (https, or http on a
// loopback host): a redirect from https to plain http elsewhere, where
// anyone on the path could replace the keys, fails the fetch.
func TestJWTKeySetRedirect(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	const plainHost = "keys.example.test:80" // served by iss, over plain http
	redirecting := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.URL.Query().Get("to")+"/jwks", http.StatusFound)
	}))
	t.Cleanup(redirecting.Close)
	// The client trusts the test certificate, and reaches plainHost at
	// the issuer's loopback address, as a name resolved elsewhere would.
	tr := redirecting.Client().Transport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == plainHost {
			addr = iss.srv.Listener.Addr().String()
		}
		return d.DialContext(ctx, network, addr)
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	opts := func(to string) JWTOptions {
		return JWTOptions{JWKSURL: redirecting.URL + "/jwks?to=" + to, Issuer: testIss, Audience: testAud, HTTPClient: client,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}

	a, err := NewJWT(t.Context(), opts(iss.srv.Listener.Addr().String()))
	if err != nil {
		t.Fatalf("a redirect to http on loopback: %v", err)
	}
	a.Close()
	before := iss.fetches.Load()
	a, err = NewJWT(t.Context(), opts(plainHost))
	if err == nil {
		a.Close()
		t.Fatal("the key set was fetched through a redirect from https to plain http off loopback")
	}
	if !strings.Contains(err.Error(), "https") {
		t.Errorf("error %q does not say the redirect must be https", err)
	}
	if n := iss.fetches.Load() - before; n != 0 {
		t.Errorf("the plain http key set was fetched %d times", n)
	}
}

// TestJWTAudienceCase: the audience is compared as the MCP authorization
// specification (2025-11-25, "Canonical Server URI") asks: a resource URI's
// scheme and host in upper case name the same resource, so a token whose
// aud spells them so is accepted; its path and query are compared exactly,
// and any other resource is refused.
func TestJWTAudienceCase(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	lower := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL}) // https://mcp.example.test/mcp
	upper := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, Audience: "HTTPS://MCP.Example.TEST/mcp"})
	for _, c := range []struct {
		aud any
		ok  bool
	}{
		{testAud, true},
		{"HTTPS://MCP.EXAMPLE.TEST/mcp", true},
		{"https://Mcp.Example.Test/mcp", true},
		{[]string{"https://other.test", "Https://mcp.example.TEST/mcp"}, true},
		{"https://mcp.example.test/MCP", false},
		{"https://mcp.example.test/mcp/", false},
		{"https://mcp.example.test/mcp?x=1", false},
		{"https://mcp.example.test.evil/mcp", false},
		{"https://mcp.example.test:8443/mcp", false},
		{"http://mcp.example.test/mcp", false},
		{"mcp.example.test/mcp", false},
		{"https://MCP.EXAMPLE.TEST", false},
	} {
		for _, a := range []*JWT{lower, upper} {
			p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, ec, "k1", claims("aud", c.aud))))
			switch {
			case c.ok && (err != nil || p != "alice"):
				t.Errorf("audience %q, aud %v: Authenticate = %q, %v; want alice", a.opts.Audience, c.aud, p, err)
			case !c.ok && err == nil:
				t.Errorf("audience %q, aud %v: accepted as %q", a.opts.Audience, c.aud, p)
			case !c.ok && authError(t, err).Description != "token was not issued for this resource":
				t.Errorf("audience %q, aud %v: refused %v, want as not issued for this resource", a.opts.Audience, c.aud, err)
			}
		}
	}
}

// TestJWTCriticalHeader: a token whose header lists critical extensions
// ("crit") is refused, since this server understands none (RFC 7515
// §4.1.11: such a JWS is invalid to a recipient that does not), even
// when it is validly signed.
func TestJWTCriticalHeader(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	for _, crit := range []any{[]string{"exp-by-processor"}, []string{}, "exp-by-processor"} {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims())
		tok.Header["kid"] = "k1"
		tok.Header["crit"] = crit
		tok.Header["exp-by-processor"] = true
		s, err := tok.SignedString(ec)
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Authenticate(authRequest("Bearer " + s))
		if err == nil {
			t.Fatalf("crit %v: accepted as %q", crit, p)
		}
		if ae := authError(t, err); ae.Status != http.StatusUnauthorized || ae.Code != ErrCodeInvalidToken || !strings.Contains(ae.Description, "critical") {
			t.Fatalf("crit %v: refused %d %q %q, want 401 invalid_token naming the critical extensions", crit, ae.Status, ae.Code, ae.Description)
		}
	}
}

// TestJWTAccessTokenType: with RequireAccessTokenType, a token is
// accepted only when its typ says it is a JWT access token (at+jwt or
// application/at+jwt, in any case); one typed JWT, or untyped, such as an
// ID token of the same issuer, is refused 401 invalid_token. Without the
// option every typ is accepted.
func TestJWTAccessTokenType(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	strict := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RequireAccessTokenType: true})
	lax := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	for _, c := range []struct {
		typ    any // nil: no typ header
		strict bool
	}{
		{"at+jwt", true}, {"AT+JWT", true}, {"application/at+jwt", true},
		{"JWT", false}, {nil, false}, {"at+jwt ", false}, {1, false},
	} {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims())
		tok.Header["kid"] = "k1"
		if c.typ == nil {
			delete(tok.Header, "typ")
		} else {
			tok.Header["typ"] = c.typ
		}
		s, err := tok.SignedString(ec)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := lax.Authenticate(authRequest("Bearer " + s)); err != nil || p != "alice" {
			t.Errorf("typ %v without the option: %q, %v", c.typ, p, err)
		}
		p, err := strict.Authenticate(authRequest("Bearer " + s))
		switch {
		case c.strict && (err != nil || p != "alice"):
			t.Errorf("typ %v: %q, %v; want alice", c.typ, p, err)
		case !c.strict && err == nil:
			t.Errorf("typ %v: accepted as %q", c.typ, p)
		case !c.strict:
			if ae := authError(t, err); ae.Status != http.StatusUnauthorized || ae.Code != ErrCodeInvalidToken || !strings.Contains(ae.Description, "at+jwt") {
				t.Errorf("typ %v: refused %d %q %q, want 401 invalid_token naming at+jwt", c.typ, ae.Status, ae.Code, ae.Description)
			}
		}
	}
}

// TestJWTShortRSAKey: an RSA key shorter than 2048 bits in the key set
// verifies no token (RFC 7518 §3.3 requires 2048 bits or more for RS* and
// PS*; a shorter key may be factored), whether the token names it or not;
// a 2048-bit key does.
func TestJWTShortRSAKey(t *testing.T) {
	iss := newTestIssuer(t)
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	long, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss.publish(t, "short", &short.PublicKey, jwkset.AlgRS256)
	iss.publish(t, "long", &long.PublicKey, jwkset.AlgRS256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	for _, kid := range []string{"short", ""} {
		p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodRS256, short, kid, claims())))
		if err == nil {
			t.Fatalf("kid %q: a token signed by a 1024-bit RSA key was accepted as %q", kid, p)
		}
		if ae := authError(t, err); ae.Status != http.StatusUnauthorized || ae.Code != ErrCodeInvalidToken {
			t.Fatalf("kid %q: refused %d %q, want 401 invalid_token", kid, ae.Status, ae.Code)
		}
	}
	if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodRS256, long, "long", claims()))); err != nil || p != "alice" {
		t.Fatalf("a 2048-bit key: Authenticate = %q, %v; want alice", p, err)
	}
}
