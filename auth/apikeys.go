package auth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// APIKeys authenticates requests by API key, presented as a bearer token
// (Authorization: Bearer <key>): each key names its principal. The keys
// are kept as SHA-256 hashes only, so the key file need hold no secret a
// reader could present. A missing token is refused as [Error] 401, an
// unknown key 401 invalid_token, a malformed header 400.
type APIKeys struct {
	principals map[[sha256.Size]byte]string
}

// NewAPIKeys returns an APIKeys that accepts each key of keys for its
// principal (key -> principal).
func NewAPIKeys(keys map[string]string) *APIKeys {
	a := &APIKeys{principals: make(map[[sha256.Size]byte]string, len(keys))}
	for k, p := range keys {
		a.principals[sha256.Sum256([]byte(k))] = p
	}
	return a
}

// ReadAPIKeys reads API keys, one a line: a principal, a space, and the
// hex SHA-256 of its key (as `printf %s "$KEY" | sha256sum` prints it).
// Blank lines and lines starting with # are skipped. A principal may have
// several keys; a hash given twice is an error.
func ReadAPIKeys(r io.Reader) (*APIKeys, error) {
	a := &APIKeys{principals: map[[sha256.Size]byte]string{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		principal, sum, ok := strings.Cut(line, " ")
		sum = strings.TrimSpace(sum)
		b, err := hex.DecodeString(sum)
		if !ok || err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("API keys, line %d: want a principal and the hex SHA-256 of its key", n)
		}
		h := [sha256.Size]byte(b)
		if _, dup := a.principals[h]; dup {
			return nil, fmt.Errorf("API keys, line %d: a key hash given twice", n)
		}
		a.principals[h] = principal
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	if len(a.principals) == 0 {
		return nil, errors.New("reading API keys: none")
	}
	return a, nil
}

// LoadAPIKeys reads the API keys of a file (see [ReadAPIKeys]).
func LoadAPIKeys(path string) (*APIKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening API keys: %w", err)
	}
	defer f.Close()
	a, err := ReadAPIKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Authenticate returns the principal of the request's API key.
func (a *APIKeys) Authenticate(r *http.Request) (string, error) {
	key, e := bearerToken(r)
	if e != nil {
		return "", e
	}
	// The map is keyed by the key's hash: what a lookup's timing could
	// tell is about hashes, not keys.
	p, ok := a.principals[sha256.Sum256([]byte(key))]
	if !ok {
		return "", &Error{Status: http.StatusUnauthorized, Code: ErrCodeInvalidToken, Description: "unknown API key"}
	}
	return p, nil
}
