package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// groupCollector exports the admission per worker group of a gateway's
// groupLoads, read when scraped, so that deciding on a call costs one
// count more, under the lock admission already holds:
//
//   - mcpstream_gateway_group_calls_total{group,outcome}: the calls this
//     gateway admitted (outcome admitted) and refused at once because
//     their group was behind (outcome refused) to each group;
//   - mcpstream_gateway_group_expected_wait_seconds{group}: the wait a
//     call to the group would be expected to have now, behind its
//     backlog (the estimate, its learnt bias included); calls expected
//     beyond their queue target are refused.
//
// The group label holds the worker groups that registered tools, which
// the operator deploys: it stays bounded.
type groupCollector struct {
	loads *groupLoads
	calls *prometheus.Desc
	wait  *prometheus.Desc
}

// newGroupCollector returns the collector of l's groups.
func newGroupCollector(l *groupLoads) *groupCollector {
	name := func(n string) string { return prometheus.BuildFQName("mcpstream", "gateway", n) }
	return &groupCollector{loads: l,
		calls: prometheus.NewDesc(name("group_calls_total"),
			"Calls to each worker group, by outcome: admitted, or refused at once because the wait expected behind the group's backlog exceeded its queue target.",
			[]string{"group", "outcome"}, nil),
		wait: prometheus.NewDesc(name("group_expected_wait_seconds"),
			"The wait a call to the worker group would be expected to have now behind its backlog (the estimate admission per group decides on); 0 while the group keeps up.",
			[]string{"group"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.calls
	ch <- c.wait
}

// Collect implements prometheus.Collector.
func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	l, now := c.loads, time.Now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	for name, gl := range l.groups {
		gl.mu.Lock()
		wait, _, _ := gl.expectedWait(now, l.interval)
		admitted, refused := gl.admittedTotal, gl.refusedTotal
		gl.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(admitted), name, "admitted")
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(refused), name, "refused")
		ch <- prometheus.MustNewConstMetric(c.wait, prometheus.GaugeValue, wait.Seconds(), name)
	}
}
