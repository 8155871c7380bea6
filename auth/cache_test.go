package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func TestTokenCache(t *testing.T) {
	now := time.Now()
	c := newTokenCache(3, time.Minute)

	c.put("a", "alice", now.Add(time.Hour), now)
	if p, ok := c.get("a", now.Add(59*time.Second)); !ok || p != "alice" {
		t.Fatalf("get a within the TTL = %q, %v; want alice, true", p, ok)
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Fatal("a is still served at its TTL")
	}
	if n := c.len(); n != 0 {
		t.Fatalf("an entry read past its TTL is kept: %d entries", n)
	}

	// A token expiring before the TTL is forgotten at its expiry.
	c.put("b", "bob", now.Add(10*time.Second), now)
	if _, ok := c.get("b", now.Add(10*time.Second)); ok {
		t.Fatal("b is served at its expiry")
	}
	// Already expired: never stored.
	c.put("c", "carol", now.Add(-time.Second), now)
	if _, ok := c.get("c", now); ok {
		t.Fatal("an expired token was cached")
	}
	// Too long to keep.
	long := strings.Repeat("x", maxCachedToken+1)
	c.put(long, "mallory", now.Add(time.Hour), now)
	if _, ok := c.get(long, now); ok {
		t.Fatal("a token over maxCachedToken was cached")
	}

	// Full: expired entries go first, and the bound holds.
	c = newTokenCache(3, time.Minute)
	c.put("short", "s", now.Add(time.Second), now)
	c.put("k1", "p1", now.Add(time.Hour), now)
	c.put("k2", "p2", now.Add(time.Hour), now)
	later := now.Add(2 * time.Second)
	c.put("k3", "p3", now.Add(time.Hour), later)
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, ok := c.get(k, later); !ok {
			t.Errorf("%s evicted while an expired entry could go", k)
		}
	}
	for i := range 20 {
		c.put("n"+string(rune('a'+i)), "p", now.Add(time.Hour), later)
		if n := c.len(); n > 3 {
			t.Fatalf("cache holds %d entries, bound 3", n)
		}
	}

	var off *tokenCache = newTokenCache(-1, time.Minute)
	off.put("a", "alice", now.Add(time.Hour), now)
	if _, ok := off.get("a", now); ok {
		t.Fatal("a disabled cache served a token")
	}
}

func TestJWTCachesOnlyAcceptedTokens(t *testing.T) {
	iss := newTestIssuer(t)
	ec := ecKey(t)
	iss.publish(t, "ec1", &ec.PublicKey, jwkset.AlgES256)
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RequiredScopes: []string{"mcp:tools"}})

	good := "Bearer " + sign(t, jwt.SigningMethodES256, ec, "ec1", claims())
	for range 2 {
		if p, err := a.Authenticate(authRequest(good)); err != nil || p != "alice" {
			t.Fatalf("Authenticate(good) = %q, %v", p, err)
		}
	}
	if n := a.cache.len(); n != 1 {
		t.Fatalf("cache holds %d entries after one token twice; want 1", n)
	}
	noScope := "Bearer " + sign(t, jwt.SigningMethodES256, ec, "ec1", claims("scope", "profile"))
	for range 2 {
		if _, err := a.Authenticate(authRequest(noScope)); authError(t, err).Status != 403 {
			t.Fatalf("token without the scope: %v, want 403", err)
		}
	}
	other := ecKey(t)
	forged := "Bearer " + sign(t, jwt.SigningMethodES256, other, "ec1", claims())
	if _, err := a.Authenticate(authRequest(forged)); authError(t, err).Code != ErrCodeInvalidToken {
		t.Fatalf("forged token: %v, want invalid_token", err)
	}
	if n := a.cache.len(); n != 1 {
		t.Fatalf("refused tokens were cached: %d entries", n)
	}

	off := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, CacheSize: -1})
	if p, err := off.Authenticate(authRequest(good)); err != nil || p != "alice" {
		t.Fatalf("without a cache: %q, %v", p, err)
	}
	if off.cache != nil {
		t.Fatal("CacheSize -1 left a cache")
	}
}

// BenchmarkJWT is one request's token check: a signature verification
// without the cache, a map lookup with it.
func BenchmarkJWT(b *testing.B) {
	iss := newTestIssuer(b)
	ec := ecKey(b)
	iss.publish(b, "ec1", &ec.PublicKey, jwkset.AlgES256)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	iss.publish(b, "rsa1", &rk.PublicKey, jwkset.AlgRS256)
	tokens := map[string]string{
		"ES256": "Bearer " + sign(b, jwt.SigningMethodES256, ec, "ec1", claims()),
		"RS256": "Bearer " + sign(b, jwt.SigningMethodRS256, rk, "rsa1", claims()),
	}
	for _, alg := range []string{"ES256", "RS256"} {
		for _, cached := range []bool{false, true} {
			name := alg + "/uncached"
			o := JWTOptions{JWKSURL: iss.srv.URL, CacheSize: -1}
			if cached {
				name, o.CacheSize = alg+"/cached", 0
			}
			b.Run(name, func(b *testing.B) {
				a := newTestAuth(b, o)
				r := authRequest(tokens[alg])
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := a.Authenticate(r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
