package main

import (
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bench"
)

// TestFinish: the plateau is the median of the last third of the samples,
// and a tier's MiB per 1,000 calls/s its growth over the load's rate.
func TestFinish(t *testing.T) {
	const mb = 1 << 20
	r := &report{Tiers: []tierInfo{{Name: "gateway"}}, Before: point{RSS: []int64{40 * mb}}}
	for _, v := range []int64{50, 80, 100, 110, 120, 115, 140, 120, 130} {
		r.Samples = append(r.Samples, point{RSS: []int64{v * mb}})
	}
	res := &bench.Result{Throughput: 2000, OK: 1000}
	r.finish(res, []time.Duration{3 * time.Second}, []time.Duration{time.Second})
	g := r.Tiers[0]
	if g.PlateauMiB != 130 || g.MaxMiB != 140 || g.BeforeMiB != 40 || g.PerKiloMiB != 45 || g.CPUPerCallUs != 2000 {
		t.Errorf("finish: %+v", g)
	}
}
