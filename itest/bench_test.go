package itest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway"
)

// BenchmarkToolsCall measures the whole path of a tools/call in one
// process: HTTP on loopback -> gateway -> JetStream (file storage) ->
// demo worker -> reply -> HTTP response, with one session per parallel
// client (run with -cpu to vary the clients' goroutines), without metrics
// and with the gateway's and the worker's metrics on a registry.
func BenchmarkToolsCall(b *testing.B) {
	b.Run("metrics=off", func(b *testing.B) { benchToolsCall(b, gateway.Config{}) })
	b.Run("metrics=on", func(b *testing.B) { benchToolsCall(b, gateway.Config{Metrics: prometheus.NewRegistry()}) })
}

func benchToolsCall(b *testing.B, cfg gateway.Config) {
	s := newStack(b, cfg)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	var id atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sid := initSession(b, s.url)
		for pb.Next() {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`, id.Add(1))
			req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"text":"hello"`)) {
				b.Errorf("status %d: %s", resp.StatusCode, out)
				return
			}
		}
	})
}
