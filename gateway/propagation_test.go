package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// BenchmarkRegistryPropagation measures how long a registry change takes
// to reach the snapshots of three gateways (each on its own connection to
// one JetStream): from the KV put until every gateway serves the new
// version. It reports p50 and p99 over the iterations.
func BenchmarkRegistryPropagation(b *testing.B) {
	emb, _, _ := testkit.JetStream(b)
	ctx := context.Background()
	var gws []*Gateway
	for i := range 3 {
		nc, err := emb.Connect()
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		g, err := New(ctx, nc, Config{ID: fmt.Sprintf("gw%d", i), Topology: streams.Topology{Partitions: 1},
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		gws = append(gws, g)
	}
	nc, err := emb.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := kv.Put(ctx, streams.HeartbeatKey("g", "i"), []byte(`{}`)); err != nil {
		b.Fatal(err)
	}
	put := func(version string) {
		v, _ := json.Marshal(schema.ToolEntry{Tool: schema.Tool{Name: "t", InputSchema: json.RawMessage(`{"type":"object"}`)},
			Group: "g", Version: version})
		if _, err := kv.Put(ctx, streams.ToolKey("t"), v); err != nil {
			b.Fatal(err)
		}
	}
	// seen waits until gateway g serves version.
	seen := func(g *Gateway, version string) {
		deadline := time.After(10 * time.Second)
		for {
			changed := g.reg.Changed()
			if t := g.Registry().Tool("t"); t != nil && t.Version == version {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				b.Fatalf("%s never saw version %s", g.ID(), version)
			}
		}
	}
	put("v0")
	for _, g := range gws {
		seen(g, "v0")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		version := fmt.Sprintf("v%d", i+1)
		start := time.Now()
		put(version)
		var wg sync.WaitGroup
		for _, g := range gws {
			wg.Go(func() { seen(g, version) })
		}
		wg.Wait()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
