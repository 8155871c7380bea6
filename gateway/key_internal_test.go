package gateway

import "testing"

// Request keys are the gateway's id, a dash and a counter in base 36, each
// new; one allocation each.
func TestNextKey(t *testing.T) {
	g := &Gateway{}
	g.cfg.ID = "gw1"
	g.keySeq.Store(35)
	if k := g.nextKey(); k != "gw1-10" {
		t.Fatalf("key %q, want gw1-10", k)
	}
	if k := g.nextKey(); k != "gw1-11" {
		t.Fatalf("key %q, want gw1-11", k)
	}
	if n := testing.AllocsPerRun(100, func() { _ = g.nextKey() }); n != 1 {
		t.Errorf("%.0f allocations a key, want 1", n)
	}
}
