package gateway

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/schema"
)

// groupSim is a worker group of handlers running calls of run each,
// first come first served, behind gateways that admit calls to it with
// groupLoads, on a simulated clock: the group's replica and the gateways
// report every interval, and every report reaches every gateway at once.
type groupSim struct {
	handlers int
	run      time.Duration
	interval time.Duration
	gws      []*groupLoads
	queue    []simCall       // admitted, waiting for a handler
	ends     []time.Time     // when each busy handler finishes
	allBusy  bool            // every handler was busy since the last report
	waits    []time.Duration // what each call that started waited
}

// simCall is an admitted call: the gateway that admitted it, when, and
// the wait it expected.
type simCall struct {
	gw       int
	at       time.Time
	expected time.Duration
}

// step moves the group to now: finished calls free their handlers, which
// take the queue's next calls; the waits they had teach their gateways'
// bias.
func (s *groupSim) step(now time.Time) {
	busy := s.ends[:0]
	for _, e := range s.ends {
		if e.After(now) {
			busy = append(busy, e)
		}
	}
	s.ends = busy
	for len(s.ends) < s.handlers && len(s.queue) > 0 {
		c := s.queue[0]
		s.queue = s.queue[1:]
		s.gws[c.gw].observe("g", c.expected, now.Sub(c.at))
		s.waits = append(s.waits, now.Sub(c.at))
		s.ends = append(s.ends, now.Add(s.run))
	}
	if len(s.ends) == s.handlers {
		s.allBusy = true
	}
}

// report sends the replica's report and the gateways' to every gateway.
func (s *groupSim) report(now time.Time) {
	backlog := int64(schema.BacklogNone)
	if s.allBusy {
		backlog = int64(len(s.queue) + len(s.ends)) // stored and not acknowledged
	}
	s.allBusy = false
	replica := schema.LoadReport{Group: "g", Instance: "r", At: now.UnixNano(), Concurrency: s.handlers,
		Busy: len(s.ends), Backlog: backlog, ServiceNs: int64(s.run)}
	var reps []schema.LoadReport
	for _, gw := range s.gws {
		reps = append(reps, gw.unreported(now)...)
	}
	for _, gw := range s.gws {
		gw.heard(&replica, now)
		for i := range reps {
			gw.heard(&reps[i], now)
		}
	}
}

// TestGroupLoadFairShares: three gateways asked alike for more than a
// group can serve admit alike, whichever started first, and together
// about what the group serves; a gateway asked for less than an equal
// share gets all it asks for.
func TestGroupLoadFairShares(t *testing.T) {
	for _, c := range []struct {
		name  string
		rates []float64       // calls a second each gateway is asked for
		start []time.Duration // when each starts to be asked
		// want returns the calls a second gateway i should admit, of
		// capacity.
		want func(i int, capacity float64) float64
	}{
		{"asked alike, started apart", []float64{765, 765, 765}, []time.Duration{0, time.Second, 2 * time.Second},
			func(_ int, capacity float64) float64 { return capacity / 3 }},
		{"one asked for little", []float64{100, 900, 900}, []time.Duration{0, 0, 0},
			func(i int, capacity float64) float64 {
				if i == 0 {
					return 100
				}
				return (capacity - 100) / 2
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const interval = 100 * time.Millisecond
			s := &groupSim{handlers: 16, run: 20 * time.Millisecond, interval: interval}
			capacity := float64(s.handlers) / s.run.Seconds() // 800 a second
			for i := range c.rates {
				s.gws = append(s.gws, newGroupLoads(fmt.Sprintf("gw%d", i), interval, 50*time.Millisecond))
			}
			t0 := time.Unix(1000, 0)
			const tick = time.Millisecond
			due := make([]float64, len(c.rates))
			admitted := make([]int, len(c.rates))
			measureFrom, end := 5*time.Second, 10*time.Second
			for d := time.Duration(0); d < end; d += tick {
				now := t0.Add(d)
				s.step(now)
				if d%interval == 0 {
					s.report(now)
				}
				for i, rate := range c.rates {
					if d < c.start[i] {
						continue
					}
					for due[i] += rate * tick.Seconds(); due[i] >= 1; due[i]-- {
						wait, over := s.gws[i].admit("g", 0, now)
						if over > 0 {
							continue
						}
						s.queue = append(s.queue, simCall{gw: i, at: now, expected: wait})
						if d >= measureFrom {
							admitted[i]++
						}
					}
				}
			}
			slices.Sort(s.waits)
			p99 := s.waits[len(s.waits)*99/100]
			t.Logf("admitted %v in %.0f s; waits p50 %s, p99 %s", admitted, (end - measureFrom).Seconds(), s.waits[len(s.waits)/2], p99)
			if p99 > 100*time.Millisecond {
				t.Errorf("admitted calls waited p99 %s, over twice the 50ms target", p99)
			}
			secs := (end - measureFrom).Seconds()
			var total float64
			for i, n := range admitted {
				got, want := float64(n)/secs, c.want(i, capacity)
				total += got
				if math.Abs(got-want) > 0.15*want {
					t.Errorf("gateway %d admitted %.0f a second, want %.0f (within 15%%); all: %v in %.0f s", i, got, want, admitted, secs)
				}
			}
			if math.Abs(total-capacity) > 0.1*capacity {
				t.Errorf("admitted %.0f a second in all, the group serves %.0f", total, capacity)
			}
		})
	}
}

// TestFairRatio: the capacity shared by max-min fairness over what each
// gateway asks for, seen from one of them.
func TestFairRatio(t *testing.T) {
	for _, c := range []struct {
		own        float64
		others     []float64
		capacity   float64
		ratio      float64
		share      float64
		underShare bool
	}{
		{10, []float64{20, 30}, 0, 5, 10, false},                 // no capacity known: what each asks for
		{10, []float64{20, 30}, 100, 5, 10, false},               // room for all
		{500, []float64{500, 500}, 800, 2, 800.0 / 3, false},     // all asked for more: equal shares
		{100, []float64{900, 900}, 800, 7, 100, true},            // asked for little: all it asks
		{900, []float64{100, 900}, 800, 450.0 / 350, 350, false}, // beside one asked for little
		{300, []float64{900}, 800, 500.0 / 300, 300, true},       // under its share by more than the headroom
		{350, []float64{900}, 800, 450.0 / 350, 350, false},      // under its share, within the headroom
		{0, []float64{900}, 800, 0, 0, false},
	} {
		ratio, share, under := fairRatio(c.own, c.others, c.capacity)
		if math.Abs(ratio-c.ratio) > 1e-9 || math.Abs(share-c.share) > 1e-9 || under != c.underShare {
			t.Errorf("own %v, others %v, capacity %v: ratio %v, share %v, under %v; want %v, %v, %v",
				c.own, c.others, c.capacity, ratio, share, under, c.ratio, c.share, c.underShare)
		}
	}
}

// TestUnreportedRefusals: a gateway that refused every call to a group
// still reports, so that the others count what it is asked for.
func TestUnreportedRefusals(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newGroupLoads("gw1", 100*time.Millisecond, time.Millisecond)
	// One handler at a second a call and a backlog of 10: every call is
	// refused.
	l.heard(&schema.LoadReport{Group: "g", Instance: "a", At: t0.UnixNano(), Concurrency: 1, Busy: 1, Backlog: 10,
		ServiceNs: int64(time.Second)}, t0)
	for range 3 {
		if l.admitOK("g", t0) {
			t.Fatal("admitted behind 10 s of backlog")
		}
	}
	got := l.unreported(t0)
	if len(got) != 1 || got[0].Admitted != 0 || got[0].Refused != 3 || got[0].Gateway != "gw1" {
		t.Fatalf("reports %+v, want one of 3 refused", got)
	}
	if again := l.unreported(t0); len(again) != 0 {
		t.Errorf("reported twice: %+v", again)
	}
	// Heard by another gateway, the refusals count in what gw1 asks for.
	other := newGroupLoads("gw2", 100*time.Millisecond, time.Millisecond)
	other.heard(&got[0], t0)
	if a := other.group("g").asks["gw1"]; a.v != 3 {
		t.Errorf("gw2 counts gw1 asked for %v, want 3", a.v)
	}
}
