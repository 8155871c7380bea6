package gateway

import (
	"context"
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

// withinRate takes a token of the bucket of x's principal. When the
// bucket is empty, x is held (Config.PrincipalRateHold): until its token
// if that comes within the hold, and then goes on; otherwise for the hold,
// and then refused with HTTP 429, Retry-After and -32000 with
// retryAfterMs, the time left to its token. Either way a client that
// ignores Retry-After is slowed down instead of answered at once. Holds
// are bounded (holdRoom); a request beyond them, or whose ctx ends while
// it is held, is refused at once. Anonymous requests are not limited. A
// notification is refused the same way when it was posted alone; in a
// batch, or on the HTTP+SSE transport, it has no answer of its own and is
// dropped.
func (g *Gateway) withinRate(ctx context.Context, x *exchange) bool {
	if g.rates == nil {
		return true
	}
	p := g.principal(x.r)
	if p == "" {
		return true
	}
	hold := g.cfg.PrincipalRateHold
	wait, reserved := g.rates.reserve(p, time.Now(), hold)
	if wait == 0 {
		return true
	}
	held := time.Duration(0)
	if hold > 0 && g.holdRoom(p) {
		held = min(wait, hold)
		woke := pause(ctx, held)
		g.rates.leave(p)
		g.holds.Add(-1)
		if reserved && woke {
			return true
		}
	}
	if reserved {
		g.rates.refund(p)
	}
	g.metrics.refused(refusedPrincipalRate)
	if x.msg != nil && x.msg.Kind() == schema.KindNotification && x.w == nil {
		return false
	}
	left := max(wait-held, time.Millisecond)
	if x.w != nil {
		x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
	}
	x.out.fail(http.StatusTooManyRequests, schema.OverloadedError(principalRateReason, int(math.Ceil(float64(left)/float64(time.Millisecond)))))
	return false
}

// holdRoom counts a hold of principal's if there is room for it: the
// gateway holds at most maxHolds requests (Config.MaxConns / 4), a
// principal at most a quarter of them, so that one flooding principal
// leaves most of the room to the others. The caller that got room calls
// rates.leave and holds.Add(-1) when the hold ends.
func (g *Gateway) holdRoom(principal string) bool {
	if g.holds.Add(1) > g.maxHolds {
		g.holds.Add(-1)
		return false
	}
	if !g.rates.enter(principal, max(1, g.maxHolds/4)) {
		g.holds.Add(-1)
		return false
	}
	return true
}

// pause waits d, and reports false when ctx (the client's request, or the
// gateway closing) ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
	// held counts the principal's requests held now (enter, leave): a
	// bucket with holds is not forgotten.
	held int64
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

// reserve takes a token of principal's bucket at now and returns 0, or,
// when the bucket is empty, how long until the next token. A token that
// comes within maxWait is reserved for the caller (reserved true; the
// bucket goes below zero, so the next caller waits one token longer) and
// the caller must wait that long, or give it back with refund; a later one
// is not (reserved false). A nil limiter always allows.
func (l *rateLimiter) reserve(principal string, now time.Time, maxWait time.Duration) (wait time.Duration, reserved bool) {
	if l == nil {
		return 0, true
	}
	s := l.shard(principal)
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
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait = time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	if wait > maxWait {
		return wait, false
	}
	b.tokens--
	return wait, true
}

// enter counts a hold of principal's, unless it already has max.
func (l *rateLimiter) enter(principal string, max int64) bool {
	s := l.shard(principal)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[principal]
	if b == nil || b.held >= max {
		return false
	}
	b.held++
	return true
}

// leave ends a hold counted by enter.
func (l *rateLimiter) leave(principal string) {
	s := l.shard(principal)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[principal]; b != nil {
		b.held--
	}
}

// refund gives back a token reserved and not used.
func (l *rateLimiter) refund(principal string) {
	s := l.shard(principal)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[principal]; b != nil {
		b.tokens = math.Min(l.burst, b.tokens+1)
	}
}

func (l *rateLimiter) shard(principal string) *rateShard {
	return &l.shards[maphash.String(l.seed, principal)%uint64(len(l.shards))]
}

// forgetFull drops the shard's buckets that have refilled by now.
func (l *rateLimiter) forgetFull(s *rateShard, now time.Time) {
	for p, b := range s.buckets {
		if b.held == 0 && b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
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
