package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// TestJWTKeyRotationNoKID: an authorization server whose tokens name no
// key id rotates its key: a token signed by the new key, which no key held
// verifies, has the key set fetched again (as a token naming an unknown
// key id does, within the same limit), and is accepted rather than
// refused until the hourly refresh. Tokens no key verifies even then cause
// no further fetch within the limit.
func TestJWTKeyRotationNoKID(t *testing.T) {
	iss := newTestIssuer(t)
	k1, k2, forged := ecKey(t), ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL}) // one fetch a minute for unknown keys
	iss.publish(t, "k2", &k2.PublicKey, jwkset.AlgES256)
	if _, err := iss.keys.KeyDelete(t.Context(), "k1"); err != nil {
		t.Fatal(err)
	}
	before := iss.fetches.Load()
	if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, k2, "", claims()))); err != nil || p != "alice" {
		t.Fatalf("a token of the new key, naming none: Authenticate = %q, %v; want alice", p, err)
	}
	if n := iss.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key set fetches for the new key, want 1", n)
	}
	start := time.Now()
	for range 5 {
		_, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, forged, "", claims())))
		if ae := authError(t, err); ae.Code != ErrCodeInvalidToken {
			t.Fatalf("a token no key verifies: refused %q, want invalid_token", ae.Code)
		}
	}
	if n := iss.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key set fetches for the new key and 5 tokens no key verifies, want 1", n)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("refusing 5 tokens no key verifies took %s: they waited for the rate limiter", d)
	}
}

// TestJWTKeyRotationNoKIDNewAlgorithm: the authorization server's new key,
// naming no key id, is of another algorithm than every key held (RS256 to
// ES256): the key set is fetched again, and the token accepted.
func TestJWTKeyRotationNoKIDNewAlgorithm(t *testing.T) {
	iss := newTestIssuer(t)
	old, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss.publish(t, "rsa", &old.PublicKey, jwkset.AlgRS256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL})
	ec := ecKey(t)
	iss.publish(t, "ec", &ec.PublicKey, jwkset.AlgES256)
	if p, err := a.Authenticate(authRequest("Bearer " + sign(t, jwt.SigningMethodES256, ec, "", claims()))); err != nil || p != "alice" {
		t.Fatalf("an ES256 token naming no key id, after RS256 keys only: Authenticate = %q, %v; want alice", p, err)
	}
}
