package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"unicode"
)

// APIKeyPrefix starts every key [GenerateAPIKey] makes, so that a key
// found in a log, a paste or a repository is recognisable as one (and
// secret scanners can look for it). Keys without it are accepted too.
const APIKeyPrefix = "mcps_"

// apiKeyBytes is the randomness of a generated key: 256 bits.
const apiKeyBytes = 32

// GenerateAPIKey returns a new random key: [APIKeyPrefix] followed by 32
// bytes from crypto/rand in unpadded base64url (48 characters in all).
// crypto/rand never fails: it crashes the program rather than return
// predictable bytes.
func GenerateAPIKey() string {
	b := make([]byte, apiKeyBytes)
	_, _ = rand.Read(b)
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashAPIKey is the SHA-256 of key, which key files hold instead of the
// key (as `printf %s "$KEY" | sha256sum` prints it, in hex).
func HashAPIKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// APIKey is one key of a key file: who presents it, the SHA-256 of the key
// (never the key) and the scopes it grants. As a line of the file it is
// the principal, the hash in hex and the scopes, separated by spaces:
//
//	alice 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b mcp:tools mcp:admin
//
// The scopes may be left out (the two-field lines of older files): such a
// key grants no scope.
type APIKey struct {
	// Principal names who presents the key: no spaces, no control
	// characters, not starting with '#'.
	Principal string
	// Hash is the SHA-256 of the key ([HashAPIKey]).
	Hash [sha256.Size]byte
	// Scopes are the scopes the key grants, each an RFC 6749 scope token;
	// a gateway's required scopes are checked against them exactly as
	// against a JWT's scope claim.
	Scopes []string
}

// String is k's line in a key file, without the newline.
func (k APIKey) String() string {
	return strings.Join(append([]string{k.Principal, hex.EncodeToString(k.Hash[:])}, k.Scopes...), " ")
}

// ShortHash is the first 12 hex digits of k's hash: enough to tell keys
// apart in a listing, and to name one to revoke.
func (k APIKey) ShortHash() string { return hex.EncodeToString(k.Hash[:6]) }

// CheckPrincipal returns an error unless p can name a key's principal in a
// key file: not empty, without white space or control characters, not
// starting with '#' (which starts a comment line).
func CheckPrincipal(p string) error {
	switch {
	case p == "":
		return errors.New("the principal is empty")
	case strings.HasPrefix(p, "#"):
		return errors.New("a principal may not start with '#'")
	case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("a principal may not hold white space or control characters")
	}
	return nil
}

// ParseAPIKeyLine parses one line of a key file. ok is false for a line
// that holds no key: blank, or a comment (starting with '#'). The error
// says which field is wrong without quoting the line, which might hold a
// key pasted by mistake.
func ParseAPIKeyLine(line string) (k APIKey, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return APIKey{}, false, nil
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return APIKey{}, false, errors.New("want a principal, the hex SHA-256 of its key and optional scopes")
	}
	if err := CheckPrincipal(f[0]); err != nil {
		return APIKey{}, false, err
	}
	b, err := hex.DecodeString(f[1])
	if err != nil || len(b) != sha256.Size {
		if strings.HasPrefix(f[1], APIKeyPrefix) {
			return APIKey{}, false, errors.New("the second field is a key: a key file holds the hex SHA-256 of each key, never the key")
		}
		return APIKey{}, false, errors.New("the second field is not the hex SHA-256 of a key (64 hex digits)")
	}
	k = APIKey{Principal: f[0], Hash: [sha256.Size]byte(b)}
	for i, s := range f[2:] {
		if err := CheckScope(s); err != nil {
			return APIKey{}, false, fmt.Errorf("scope %d: %w", i+1, err)
		}
		k.Scopes = append(k.Scopes, s)
	}
	return k, true, nil
}

// ParseAPIKeys reads a key file: one key a line ([APIKey] has the format),
// blank lines and lines starting with # skipped. A principal may have
// several keys; a hash given twice is an error. It returns the keys in
// the file's order (none for a file of comments), or an error naming the
// line that does not parse, or the reader's error.
func ParseAPIKeys(r io.Reader) ([]APIKey, error) {
	var keys []APIKey
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		k, ok, err := ParseAPIKeyLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("API keys, line %d: %w", n, err)
		}
		if !ok {
			continue
		}
		if seen[k.Hash] {
			return nil, fmt.Errorf("API keys, line %d: a key hash given twice", n)
		}
		seen[k.Hash] = true
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	return keys, nil
}

// APIKeys authenticates requests by API key, presented as a bearer token
// (Authorization: Bearer <key>): each key names its principal and the
// scopes it grants. The keys are kept as SHA-256 hashes only, so the key
// file need hold no secret a reader could present. A missing token is
// refused as [Error] 401, an unknown key 401 invalid_token, a malformed
// header 400, and a key lacking a required scope 403 insufficient_scope,
// as a JWT lacking one is (the same rule decides both).
//
// [WatchAPIKeys] reads the keys from a file and reads it again when it
// changes, so that a revoked key is refused without a restart.
type APIKeys struct {
	keys   atomic.Pointer[keyIndex]
	scopes scopeRule
	// watcher, set by WatchAPIKeys, reloads the file in the background.
	watcher *keyWatcher
}

// keyIndex maps a key's hash to its key; it is never changed once
// published, only replaced.
type keyIndex map[[sha256.Size]byte]APIKey

func newKeyIndex(keys []APIKey) *keyIndex {
	m := make(keyIndex, len(keys))
	for _, k := range keys {
		m[k.Hash] = k
	}
	return &m
}

func newAPIKeys(keys []APIKey, scopes scopeRule) *APIKeys {
	a := &APIKeys{scopes: scopes}
	a.keys.Store(newKeyIndex(keys))
	return a
}

// NewAPIKeys returns an APIKeys that accepts each key of keys for its
// principal (key -> principal), granting no scope.
func NewAPIKeys(keys map[string]string) *APIKeys {
	ks := make([]APIKey, 0, len(keys))
	for k, p := range keys {
		ks = append(ks, APIKey{Principal: p, Hash: HashAPIKey(k)})
	}
	return newAPIKeys(ks, scopeRule{})
}

// ReadAPIKeys reads API keys in the format of [ParseAPIKeys] and returns
// an APIKeys that requires no scope. It returns ParseAPIKeys's errors,
// and an error when the file holds no key.
func ReadAPIKeys(r io.Reader) (*APIKeys, error) {
	keys, err := ParseAPIKeys(r)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("reading API keys: none")
	}
	return newAPIKeys(keys, scopeRule{}), nil
}

// LoadAPIKeys reads the API keys of a file once (see [ReadAPIKeys]);
// [WatchAPIKeys] follows its changes. The error names the file.
func LoadAPIKeys(path string) (*APIKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opening API keys: %w", err)
	}
	a, err := ReadAPIKeys(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Authenticate returns the principal of the request's API key. Errors are
// *Error: 401 with no code for a request without a bearer token, 400
// invalid_request for a malformed Authorization header, 401 invalid_token
// for an unknown (or revoked) key, 403 insufficient_scope for a key
// lacking a required scope.
func (a *APIKeys) Authenticate(r *http.Request) (string, error) {
	key, e := bearerToken(r)
	if e != nil {
		e.Scope = a.scopes.challenge
		return "", e
	}
	// The map is keyed by the key's hash: what a lookup's timing could
	// tell is about hashes, not keys.
	var k APIKey
	ok := false
	if idx := a.keys.Load(); idx != nil {
		k, ok = (*idx)[HashAPIKey(key)]
	}
	if !ok {
		return "", &Error{Status: http.StatusUnauthorized, Code: ErrCodeInvalidToken, Description: "unknown API key", Scope: a.scopes.challenge}
	}
	if e := a.scopes.check(k.Scopes, "API key"); e != nil {
		return "", e
	}
	return k.Principal, nil
}

// RequiredScopes are the scopes every key must grant.
func (a *APIKeys) RequiredScopes() []string { return append([]string(nil), a.scopes.required...) }

// Len is the number of keys accepted now.
func (a *APIKeys) Len() int {
	if idx := a.keys.Load(); idx != nil {
		return len(*idx)
	}
	return 0
}

// Close stops following the key file, if [WatchAPIKeys] made a, and
// waits until the reloading goroutine has returned.
func (a *APIKeys) Close() {
	if a.watcher != nil {
		a.watcher.close()
	}
}
