package admission

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdmitTakesAllThreeOrNone: each cap refuses with its error, a refused
// call holds no slot of the caps it passed, and Release gives back every
// slot it took.
func TestAdmitTakesAllThreeOrNone(t *testing.T) {
	var queued []time.Duration
	c := New(Config{MaxInFlight: 3, MaxSession: 2, MaxPrincipal: 2, Queueing: func(d time.Duration) { queued = append(queued, d) }})
	var s1, s2, s3 atomic.Int32

	r1, err := c.Admit(&s1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Admit(&s1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admit(&s1, "bob"); !errors.Is(err, ErrSessionLimit) {
		t.Fatalf("third call of a session capped at 2: %v, want ErrSessionLimit", err)
	}
	if _, err := c.Admit(&s2, "alice"); !errors.Is(err, ErrPrincipalLimit) {
		t.Fatalf("third call of a principal capped at 2: %v, want ErrPrincipalLimit", err)
	}
	if s2.Load() != 0 {
		t.Fatalf("a call refused for its principal holds %d session slots", s2.Load())
	}
	r3, err := c.Admit(&s2, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if c.InFlight() != 3 {
		t.Fatalf("%d in flight, want 3", c.InFlight())
	}
	if _, err := c.Admit(&s3, "carol"); !errors.Is(err, ErrGatewayLimit) {
		t.Fatalf("a call beyond the gateway's limit: %v, want ErrGatewayLimit", err)
	}
	if s3.Load() != 0 || c.principals.acquire("carol", 1) == false {
		t.Fatal("a call refused by the gateway's limit kept its session or principal slot")
	}
	c.principals.release("carol")

	r1.Release(2*time.Millisecond, time.Now())
	r2.Release(-1, time.Now())
	r3.Release(-1, time.Now())
	if c.InFlight() != 0 || s1.Load() != 0 || s2.Load() != 0 {
		t.Fatalf("after release: %d in flight, sessions %d and %d", c.InFlight(), s1.Load(), s2.Load())
	}
	for i := range c.principals.shards {
		if n := len(c.principals.shards[i].m); n != 0 {
			t.Fatalf("principal shard %d keeps %d entries after every release", i, n)
		}
	}
	if len(queued) != 1 || queued[0] <= -2*time.Millisecond || queued[0] > time.Second {
		t.Fatalf("queueing seen %v, want one observation, of the answered call only", queued)
	}
}

// TestAdmitQueueingAdaptsTheLimit: the run time a release reports is taken
// from the call's latency: a call that spent all its time in its handler
// queued for nothing and lets the limit grow, one whose handler took no
// time queued for all of it and, past the target, lowers the limit again;
// calls released unanswered teach it nothing. (Every call closes a window
// of 1ns.)
func TestAdmitQueueingAdaptsTheLimit(t *testing.T) {
	c := New(Config{MaxInFlight: 10_000, QueueTarget: time.Nanosecond, Window: time.Nanosecond})
	var s atomic.Int32
	call := func(ran time.Duration) {
		t.Helper()
		ticket, err := c.Admit(&s, "")
		if err != nil {
			t.Fatal(err)
		}
		ticket.Release(ran, time.Now())
	}
	start := c.Limit()
	for range 3 {
		call(-1)
	}
	if c.Limit() != start {
		t.Fatalf("unanswered calls moved the limit from %d to %d", start, c.Limit())
	}
	for range 10 {
		call(time.Hour) // all handler: no queueing
	}
	grown := c.Limit()
	if grown <= start {
		t.Fatalf("calls that did not queue left the limit at %d (from %d)", grown, start)
	}
	call(0) // all queueing, past the 1ns target
	if c.Limit() >= grown {
		t.Fatalf("a call that queued past the target left the limit at %d (from %d)", c.Limit(), grown)
	}
}
