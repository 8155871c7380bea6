package admission

import (
	"hash/maphash"
	"sync"
)

const principalShards = 32

// principals counts each principal's calls in flight. An entry exists only
// while its count is above zero, so the map is bounded by calls in flight.
type principals struct {
	seed   maphash.Seed
	shards [principalShards]struct {
		mu sync.Mutex
		m  map[string]int
	}
}

func newPrincipals() *principals {
	p := &principals{seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].m = map[string]int{}
	}
	return p
}

// acquire takes a slot for principal unless it already has max; release
// gives it back.
func (p *principals) acquire(principal string, max int) bool {
	sh := &p.shards[maphash.String(p.seed, principal)%principalShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[principal] >= max {
		return false
	}
	sh.m[principal]++
	return true
}

func (p *principals) release(principal string) {
	sh := &p.shards[maphash.String(p.seed, principal)%principalShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.m[principal] - 1; n > 0 {
		sh.m[principal] = n
	} else {
		delete(sh.m, principal)
	}
}
