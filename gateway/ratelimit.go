package gateway

import (
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// principalRateReason is what a request refused by Config.PrincipalRate is
// told.
const principalRateReason = "principal rate limit reached"

// withinRate takes a token of the bucket of x's principal, or refuses x
// (HTTP 429, Retry-After, -32000 with retryAfterMs) and returns false.
// Anonymous requests are not limited.
func (g *Gateway) withinRate(x *exchange) bool {
	if g.rates == nil {
		return true
	}
	p := g.principal(x.r)
	if p == "" {
		return true
	}
	wait := g.rates.take(p, time.Now())
	if wait == 0 {
		return true
	}
	g.metrics.refused(refusedPrincipalRate)
	ms := int(math.Ceil(float64(wait) / float64(time.Millisecond)))
	if x.w != nil {
		x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	x.out.fail(http.StatusTooManyRequests, schema.OverloadedError(principalRateReason, ms))
	return false
}

// rateLimiter keeps a token bucket for each principal
// (Config.PrincipalRate, Config.PrincipalBurst): a request takes a token,
// and tokens come back at the rate, up to the burst. Buckets live in
// shards, each under its own lock; a shard past its share of maxBuckets
// forgets the buckets that have refilled (a full bucket is as good as
// none), so memory follows the principals active in the last burst/rate
// seconds.
type rateLimiter struct {
	rate, burst float64
	maxShard    int
	seed        maphash.Seed
	shards      [16]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets is how many buckets the limiter keeps before it forgets the
// full ones.
const maxBuckets = 100_000

// newRateLimiter returns a limiter of rate requests a second with bursts
// of burst, or nil (no limit) when rate is not positive.
func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	l := &rateLimiter{rate: rate, burst: float64(burst), maxShard: maxBuckets / 16, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = map[string]*tokenBucket{}
	}
	return l
}

// take takes a token of principal's bucket at now, and returns 0, or, when
// the bucket is empty, how long until it holds one. A nil limiter always
// allows.
func (l *rateLimiter) take(principal string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	s := &l.shards[maphash.String(l.seed, principal)%uint64(len(l.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[principal]
	if b == nil {
		if len(s.buckets) >= l.maxShard {
			l.forgetFull(s, now)
		}
		b = &tokenBucket{tokens: l.burst, at: now}
		s.buckets[principal] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return 0
}

// forgetFull drops the shard's buckets that have refilled by now.
func (l *rateLimiter) forgetFull(s *rateShard, now time.Time) {
	for p, b := range s.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(s.buckets, p)
		}
	}
}

// size is how many buckets the limiter keeps.
func (l *rateLimiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
