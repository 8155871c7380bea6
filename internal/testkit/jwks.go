package testkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/MicahParks/jwkset"
)

// JWKSHandler serves the public keys of keys as a JWK Set (RFC 7517),
// what an authorization server's jwks_uri answers.
func JWKSHandler(keys jwkset.Storage) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := keys.JSONPublic(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// ServeJWKS serves keys (JWKSHandler) over HTTP on loopback until the end
// of the test and returns its URL.
func ServeJWKS(t testing.TB, keys jwkset.Storage) string {
	t.Helper()
	srv := httptest.NewServer(JWKSHandler(keys))
	t.Cleanup(srv.Close)
	return srv.URL
}

// PublishKey adds the public key pub to keys with metadata md (its kid,
// alg, use).
func PublishKey(t testing.TB, keys jwkset.Storage, pub any, md jwkset.JWKMetadataOptions) {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.KeyWrite(context.Background(), jwk); err != nil {
		t.Fatal(err)
	}
}
