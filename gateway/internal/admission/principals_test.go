package admission

import "testing"

func TestPrincipalsCapAndStayBounded(t *testing.T) {
	p := newPrincipals()
	for range 2 {
		if !p.acquire("alice", 2) {
			t.Fatal("alice refused below her cap")
		}
	}
	if p.acquire("alice", 2) {
		t.Fatal("alice admitted beyond her cap")
	}
	if !p.acquire("bob", 2) {
		t.Fatal("bob refused because of alice")
	}
	p.release("alice")
	if !p.acquire("alice", 2) {
		t.Fatal("a released slot is not reusable")
	}
	for _, who := range []string{"alice", "alice", "bob"} {
		p.release(who)
	}
	for i := range p.shards {
		if n := len(p.shards[i].m); n != 0 {
			t.Fatalf("shard %d keeps %d entries with nothing in flight", i, n)
		}
	}
}
