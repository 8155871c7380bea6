package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// ExampleProvision provisions a two-partition topology on an embedded
// JetStream server and prints what it created: the request streams, the
// events and dead-letter streams, the buckets (each a KV_ stream), and the
// topology recorded in the registry bucket for gateways and workers to
// agree on.
func ExampleProvision() {
	dir, err := os.MkdirTemp("", "mcpstream-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 2}); err != nil {
		log.Fatal(err)
	}

	var names, buckets []string
	list := js.StreamNames(ctx)
	for name := range list.Name() {
		if bucket, ok := strings.CutPrefix(name, "KV_"); ok {
			buckets = append(buckets, bucket)
		} else {
			names = append(names, name)
		}
	}
	if err := list.Err(); err != nil {
		log.Fatal(err)
	}
	slices.Sort(names)
	slices.Sort(buckets)
	fmt.Println("streams:", strings.Join(names, " "))
	fmt.Println("buckets:", strings.Join(buckets, " "))

	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		log.Fatal(err)
	}
	e, err := reg.Get(ctx, streams.TopologyKey)
	if err != nil {
		log.Fatal(err)
	}
	var recorded streams.Topology
	if err := json.Unmarshal(e.Value(), &recorded); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d partitions, AckWait %v, MaxDeliver %d\n", streams.TopologyKey, recorded.Partitions, recorded.AckWait, recorded.MaxDeliver)
	// Output:
	// streams: MCP_DLQ MCP_EVENTS MCP_REQ_0 MCP_REQ_1
	// buckets: mcp_registry mcp_results mcp_sessions mcp_tasks
	// config.topology: 2 partitions, AckWait 4s, MaxDeliver 5
}
