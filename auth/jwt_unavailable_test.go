package auth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// TestJWTKeySetUnavailable: while the key set cannot be fetched, a token
// whose key the server does not hold (naming a new key id, or none) cannot
// be judged: it is answered 503 with Retry-After, for the client to try
// again, not 401 invalid_token, which tells a client to discard a token
// that may be good and ask the authorization server for another. That
// holds too for the tokens that come within RefreshUnknownKID of the
// failed fetch, which make no fetch of their own. Tokens of keys held are
// accepted throughout, and once the key set is back, a token of a new key
// is judged again (accepted, or refused 401).
func TestJWTKeySetUnavailable(t *testing.T) {
	iss := newTestIssuer(t)
	k1, k2, forged := ecKey(t), ecKey(t), ecKey(t)
	iss.publish(t, "k1", &k1.PublicKey, jwkset.AlgES256)
	// Past the failed fetch, one more is allowed 6s on: a token that
	// comes then waits for it (5s at most, unknownKIDWaitMax).
	a := newTestAuth(t, JWTOptions{JWKSURL: iss.srv.URL, RefreshUnknownKID: 6 * time.Second})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			Refuse(w, err, "")
			return
		}
		_, _ = io.WriteString(w, p)
	}))
	t.Cleanup(srv.Close)
	call := func(token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		return resp.StatusCode, string(b)
	}

	iss.failing.Store(true)
	before := iss.fetches.Load()
	newKey := sign(t, jwt.SigningMethodES256, k2, "k2", claims())
	for i, tok := range []string{newKey, newKey, sign(t, jwt.SigningMethodES256, forged, "", claims())} {
		if status, body := call(tok); status != http.StatusServiceUnavailable {
			t.Fatalf("token %d of a key not held while the key set is down: %d %s, want 503", i, status, body)
		}
	}
	if n := iss.fetches.Load() - before; n != 1 {
		t.Errorf("%d key set fetches within RefreshUnknownKID, want 1", n)
	}
	if status, body := call(sign(t, jwt.SigningMethodES256, k1, "k1", claims())); status != http.StatusOK || body != "alice" {
		t.Fatalf("a token of a key held while the key set is down: %d %s", status, body)
	}

	iss.failing.Store(false)
	iss.publish(t, "k2", &k2.PublicKey, jwkset.AlgES256)
	time.Sleep(1500 * time.Millisecond) // the next fetch is due within 5s
	if status, body := call(newKey); status != http.StatusOK || body != "alice" {
		t.Fatalf("the new key's token once the key set is back: %d %s", status, body)
	}
	if status, body := call(sign(t, jwt.SigningMethodES256, forged, "made-up", claims())); status != http.StatusUnauthorized {
		t.Fatalf("a made-up key id once the key set is back: %d %s, want 401", status, body)
	}
}
