package auth

import (
	"sync"
	"time"
)

// tokenCache remembers bearer tokens that passed validation, so that a
// client presenting its token again costs a map lookup instead of a
// signature check (tens of microseconds for RS256 and ES256). An entry
// lives until the token expires or for the cache's TTL, whichever comes
// first; the TTL bounds how long a token signed by a key since removed
// from the key set is still accepted. Only tokens up to maxCachedToken
// bytes are kept, and at most max entries: when full, expired entries go
// first, then arbitrary ones.
type tokenCache struct {
	max int
	ttl time.Duration

	mu sync.Mutex
	m  map[string]cachedToken
}

// cachedToken is a validated token's principal and when to forget it.
type cachedToken struct {
	principal string
	until     time.Time
}

// maxCachedToken is the longest token kept: longer ones are validated on
// every request rather than allowed to grow the cache's memory.
const maxCachedToken = 4096

func newTokenCache(max int, ttl time.Duration) *tokenCache {
	if max <= 0 || ttl <= 0 {
		return nil
	}
	return &tokenCache{max: max, ttl: ttl, m: make(map[string]cachedToken)}
}

// get returns the principal of a token validated before and not expired
// at now. A nil cache holds nothing.
func (c *tokenCache) get(token string, now time.Time) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	e, ok := c.m[token]
	if ok && !now.Before(e.until) {
		delete(c.m, token)
		ok = false
	}
	c.mu.Unlock()
	return e.principal, ok
}

// put remembers that token is valid for principal until exp (and at most
// the cache's TTL from now).
func (c *tokenCache) put(token, principal string, exp, now time.Time) {
	if c == nil || len(token) > maxCachedToken {
		return
	}
	until := now.Add(c.ttl)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[token]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[token] = cachedToken{principal: principal, until: until}
}

// len is the number of entries held.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
