package itest

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/upstream"
)

// BenchmarkUpstreamReplicas: the go-sdk test server's slow tool (20 ms a
// call) hosted by 1, 2 and 4 replicas of one group, in one process with
// the gateway and JetStream; each replica runs 4 handlers and a pool of 4
// stdio processes of its own. 32 sessions call it in a closed loop over
// HTTP (admission per group off, so that the backlog is queued, not
// refused). A replica's ceiling is 4 / 20 ms = 200 calls/s; calls/s should
// grow with the replicas until the machine's cores are the limit:
//
//	go test -run '^$' -bench UpstreamReplicas -benchtime 2000x ./itest/
func BenchmarkUpstreamReplicas(b *testing.B) {
	bin := upstreamBin(b)
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			s := newStack(b, gateway.Config{GroupQueueTarget: -1})
			for range n {
				s.runUpstreamWith(b, "scale", upstream.Config{Command: []string{bin}, Pool: 4},
					workers.Options{Concurrency: 4, LoadInterval: -1}, "slow")
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
			var id atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				sid := initSession(b, s.url)
				for pb.Next() {
					body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow","arguments":{}}}`, id.Add(1))
					if !benchPost(b, hc, s.url, sid, body, "slow done") {
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
