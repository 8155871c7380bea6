package gateway

import (
	"strconv"
	"testing"
	"time"
)

// TestRateLimiter: a principal's bucket holds burst requests and refills
// at the rate; the wait it reports is the time to the next token; other
// principals have buckets of their own; full buckets are forgotten once a
// shard holds its share of maxBuckets; a nil limiter allows everything.
func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(2, 3) // 2 a second, bursts of 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if w := l.take("alice", now); w != 0 {
			t.Fatalf("request %d: wait %s", i, w)
		}
	}
	if w := l.take("alice", now); w != 500*time.Millisecond {
		t.Fatalf("empty bucket: wait %s, want 500ms", w)
	}
	if w := l.take("bob", now); w != 0 {
		t.Fatalf("bob: wait %s", w)
	}
	if w := l.take("alice", now.Add(250*time.Millisecond)); w != 250*time.Millisecond {
		t.Fatalf("half refilled: wait %s, want 250ms", w)
	}
	now = now.Add(500 * time.Millisecond)
	if w := l.take("alice", now); w != 0 {
		t.Fatalf("refilled: wait %s", w)
	}
	if w := l.take("alice", now); w == 0 {
		t.Fatal("a second request within the refill of one")
	}
	// Long idle, the bucket is full again but no fuller than the burst.
	now = now.Add(time.Hour)
	for i := range 3 {
		if w := l.take("alice", now); w != 0 {
			t.Fatalf("after an hour, request %d: wait %s", i, w)
		}
	}
	if w := l.take("alice", now); w == 0 {
		t.Fatal("the bucket held more than the burst")
	}

	// Many principals, each one request: their buckets refill within
	// 1.5s, and are forgotten as new ones come.
	for i := range 3 * maxBuckets {
		l.take("p"+strconv.Itoa(i), now.Add(time.Duration(i/maxBuckets)*2*time.Second))
	}
	if n := l.size(); n > maxBuckets+16 {
		t.Errorf("%d buckets kept, want at most about %d", n, maxBuckets)
	}

	var none *rateLimiter
	if newRateLimiter(0, 5) != nil || none.take("x", now) != 0 {
		t.Error("no rate: a limit")
	}
}
