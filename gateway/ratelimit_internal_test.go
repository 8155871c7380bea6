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
	take := func(p string, now time.Time) time.Duration { // nothing reserved
		w, reserved := l.reserve(p, now, 0)
		if reserved != (w == 0) {
			t.Fatalf("%s: wait %s, reserved %v with no hold", p, w, reserved)
		}
		return w
	}
	for i := range 3 {
		if w := take("alice", now); w != 0 {
			t.Fatalf("request %d: wait %s", i, w)
		}
	}
	if w := take("alice", now); w != 500*time.Millisecond {
		t.Fatalf("empty bucket: wait %s, want 500ms", w)
	}
	if w := take("bob", now); w != 0 {
		t.Fatalf("bob: wait %s", w)
	}
	if w := take("alice", now.Add(250*time.Millisecond)); w != 250*time.Millisecond {
		t.Fatalf("half refilled: wait %s, want 250ms", w)
	}
	now = now.Add(500 * time.Millisecond)
	if w := take("alice", now); w != 0 {
		t.Fatalf("refilled: wait %s", w)
	}
	if w := take("alice", now); w == 0 {
		t.Fatal("a second request within the refill of one")
	}
	// Long idle, the bucket is full again but no fuller than the burst.
	now = now.Add(time.Hour)
	for i := range 3 {
		if w := take("alice", now); w != 0 {
			t.Fatalf("after an hour, request %d: wait %s", i, w)
		}
	}
	if w := take("alice", now); w == 0 {
		t.Fatal("the bucket held more than the burst")
	}

	// Many principals, each one request: their buckets refill within
	// 1.5s, and are forgotten as new ones come.
	for i := range 3 * maxBuckets {
		take("p"+strconv.Itoa(i), now.Add(time.Duration(i/maxBuckets)*2*time.Second))
	}
	if n := l.size(); n > maxBuckets+16 {
		t.Errorf("%d buckets kept, want at most about %d", n, maxBuckets)
	}

	var none *rateLimiter
	if w, ok := none.reserve("x", now, 0); newRateLimiter(0, 5) != nil || w != 0 || !ok {
		t.Error("no rate: a limit")
	}
}

// TestRateLimiterReserve: an empty bucket reserves the tokens that come
// within the hold, each caller waiting one token longer than the one
// before, refuses beyond the hold without taking anything, and a refund
// gives a reserved token back.
func TestRateLimiterReserve(t *testing.T) {
	l := newRateLimiter(2, 1) // a token every 500ms
	now := time.Unix(1000, 0)
	hold := time.Second
	want := func(wantWait time.Duration, wantReserved bool) {
		t.Helper()
		if w, r := l.reserve("alice", now, hold); w != wantWait || r != wantReserved {
			t.Fatalf("reserve: %s %v, want %s %v", w, r, wantWait, wantReserved)
		}
	}
	want(0, true)
	want(500*time.Millisecond, true)
	want(time.Second, true)
	want(1500*time.Millisecond, false) // beyond the hold: nothing taken
	want(1500*time.Millisecond, false)
	l.refund("alice") // the last reservation given back
	want(time.Second, true)
	now = now.Add(time.Second) // two tokens came: the first two reservations'
	want(500*time.Millisecond, true)
	now = now.Add(time.Hour)
	want(0, true) // full again, no fuller than the burst
	want(500*time.Millisecond, true)
}
