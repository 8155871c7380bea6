package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// registryFixture is a registry watching a real registry bucket on an
// embedded JetStream.
type registryFixture struct {
	t   *testing.T
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	reg *registry
}

func newRegistryFixture(t *testing.T) *registryFixture {
	t.Helper()
	_, _, js := testkit.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { // before the connection closes
		cancel()
		<-done
	})
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(slog.New(slog.DiscardHandler), 4)
	go func() { defer close(done); reg.watch(ctx, w) }()
	select {
	case <-reg.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("registry not ready")
	}
	return &registryFixture{t: t, js: js, kv: kv, reg: reg}
}

func (f *registryFixture) putTool(name, group, version string) {
	f.t.Helper()
	b, _ := json.Marshal(schema.ToolEntry{
		Tool:  schema.Tool{Name: name, Description: "tool " + name, InputSchema: json.RawMessage(`{"type":"object"}`)},
		Group: group, Version: version,
	})
	if _, err := f.kv.Put(context.Background(), streams.ToolKey(name), b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *registryFixture) beat(group, instance string, ttl time.Duration) {
	f.t.Helper()
	subject := streams.RegistrySubject(streams.HeartbeatKey(group, instance))
	var opts []jetstream.PublishOpt
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	if _, err := f.js.Publish(context.Background(), subject, []byte(`{}`), opts...); err != nil {
		f.t.Fatal(err)
	}
}

// await waits for a snapshot that satisfies cond, woken by each new one.
func (f *registryFixture) await(what string, cond func(*Snapshot) bool) *Snapshot {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		changed := f.reg.Changed()
		if s := f.reg.Load(); cond(s) {
			return s
		}
		select {
		case <-changed:
		case <-deadline:
			f.t.Fatalf("no snapshot with %s; last has %v", what, names(f.reg.Load()))
		}
	}
}

func names(s *Snapshot) []string {
	var out []string
	for n := range s.tools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func has(name string) func(*Snapshot) bool {
	return func(s *Snapshot) bool { return s.Tool(name) != nil }
}

func TestRegistryServesOnlyLiveGroups(t *testing.T) {
	f := newRegistryFixture(t)

	// A tool of a group without a heartbeat is not served. The watch applies
	// updates in order, so once B (live group) shows, A has been seen too.
	f.putTool("a", "g1", "v1")
	f.beat("g2", "i1", 0)
	f.putTool("b", "g2", "v1")
	s := f.await("b", has("b"))
	if s.Tool("a") != nil {
		t.Fatal("tool of a group with no live worker is listed")
	}

	f.beat("g1", "i1", 0)
	s = f.await("a", has("a"))
	if got := s.Tool("a").Group; got != "g1" {
		t.Fatalf("a served by %q", got)
	}

	// A heartbeat refresh of a known instance builds no new snapshot.
	seq := s.Seq
	f.beat("g1", "i1", 0)
	f.putTool("c", "g2", "v1")
	s = f.await("c", has("c"))
	if s.Seq != seq+1 {
		t.Fatalf("snapshot seq went %d -> %d; a heartbeat refresh rebuilt it", seq, s.Seq)
	}

	// The group's last instance leaving takes its tools away.
	if err := f.kv.Purge(context.Background(), streams.HeartbeatKey("g1", "i1")); err != nil {
		t.Fatal(err)
	}
	f.await("a gone", func(s *Snapshot) bool { return s.Tool("a") == nil && s.Tool("b") != nil })

	// Deleting a tool removes it.
	if err := f.kv.Delete(context.Background(), streams.ToolKey("b")); err != nil {
		t.Fatal(err)
	}
	f.await("b gone", func(s *Snapshot) bool { return s.Tool("b") == nil && s.Tool("c") != nil })
}

func TestRegistryHeartbeatExpires(t *testing.T) {
	f := newRegistryFixture(t)
	f.beat("g3", "crashed", time.Second) // never refreshed: a crashed worker
	f.putTool("d", "g3", "v1")
	f.await("d", has("d"))
	start := time.Now()
	f.await("d expired", func(s *Snapshot) bool { return s.Tool("d") == nil })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("heartbeat with a 1s TTL took %s to expire", took)
	}
}

func TestRegistryToolsListIsSortedJSON(t *testing.T) {
	f := newRegistryFixture(t)
	f.beat("g", "i", 0)
	for _, n := range []string{"zeta", "alpha", "mid dle/ü"} {
		f.putTool(n, "g", "v1")
	}
	s := f.await("three tools", func(s *Snapshot) bool { return s.Len() == 3 })
	var res struct {
		Tools []schema.Tool `json:"tools"`
	}
	if err := json.Unmarshal(s.ToolsListResult(), &res); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tl := range res.Tools {
		got = append(got, tl.Name)
		if string(tl.InputSchema) != `{"type":"object"}` {
			t.Errorf("%s inputSchema = %s", tl.Name, tl.InputSchema)
		}
	}
	if fmt.Sprint(got) != "[alpha mid dle/ü zeta]" {
		t.Fatalf("tools/list order %v", got)
	}
	// A version bump of one tool rebuilds; the same version does not.
	seq := s.Seq
	f.putTool("alpha", "g", "v1")
	f.putTool("zeta", "g", "v2")
	s = f.await("zeta v2", func(s *Snapshot) bool { return s.Tool("zeta").Version == "v2" })
	if s.Seq != seq+1 {
		t.Fatalf("seq %d -> %d: an unchanged tool rebuilt the snapshot", seq, s.Seq)
	}
}

func TestRegistryToolMovesBetweenGroups(t *testing.T) {
	f := newRegistryFixture(t)
	f.beat("ga", "i", 0)
	f.beat("gb", "i", 0)
	f.putTool("dup", "gb", "v1")
	f.await("dup", has("dup"))
	// The same name registered by another group replaces the entry (one key
	// per tool name): last writer wins, and the snapshot follows it.
	f.putTool("dup", "ga", "v2")
	f.await("dup from ga", func(s *Snapshot) bool { return s.Tool("dup") != nil && s.Tool("dup").Group == "ga" })
}

// BenchmarkRegistryLookup measures the gateway's lookup path: load the
// snapshot pointer and find a tool, from every core at once.
func BenchmarkRegistryLookup(b *testing.B) {
	reg := newRegistry(slog.New(slog.DiscardHandler), 4)
	const n = 1000
	toolNames := make([]string, n)
	reg.live["g"] = map[string]struct{}{"i": {}}
	for i := range n {
		toolNames[i] = fmt.Sprintf("tool_%04d", i)
		reg.tools[streams.ToolKey(toolNames[i])] = &schema.ToolEntry{Tool: schema.Tool{Name: toolNames[i]}, Group: "g"}
	}
	reg.rebuild()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if reg.Load().Tool(toolNames[i%n]) == nil {
				b.Fatal("missing tool")
			}
			i++
		}
	})
}

func TestRegistryPrompts(t *testing.T) {
	f := newRegistryFixture(t)
	b, _ := json.Marshal(schema.PromptEntry{Prompt: schema.Prompt{Name: "greet", Arguments: []schema.PromptArgument{{Name: "who", Required: true}}},
		Group: "pg", Version: "v1"})
	if _, err := f.kv.Put(context.Background(), streams.PromptKey("greet"), b); err != nil {
		t.Fatal(err)
	}
	f.beat("pg", "i", 0)
	s := f.await("greet", func(s *Snapshot) bool { return s.Prompt("greet") != nil })
	var res struct {
		Prompts []schema.Prompt `json:"prompts"`
	}
	if err := json.Unmarshal(s.PromptsListResult(), &res); err != nil || len(res.Prompts) != 1 || res.Prompts[0].Arguments[0].Name != "who" {
		t.Fatalf("prompts/list = %s (%v)", s.PromptsListResult(), err)
	}
	// The group's last instance going takes the prompt away.
	if err := f.kv.Purge(context.Background(), streams.HeartbeatKey("pg", "i")); err != nil {
		t.Fatal(err)
	}
	f.await("greet gone", func(s *Snapshot) bool {
		return s.Prompt("greet") == nil && string(s.PromptsListResult()) == `{"prompts":[]}`
	})
}

// TestSnapshotRequestSubjects checks that a snapshot's request subjects,
// made once for each live group and partition, are the ones
// streams.RequestSubject makes, and that a group or partition it holds
// none for still gets the right subject, without an allocation a call for
// the ones it holds.
func TestSnapshotRequestSubjects(t *testing.T) {
	f := newRegistryFixture(t) // 4 partitions
	f.beat("g1", "i1", 0)
	f.putTool("a", "g1", "v1")
	s := f.await("a", has("a"))
	if got := len(s.subjects["g1"]); got != 4 {
		t.Fatalf("%d subjects held for g1, want 4", got)
	}
	for _, group := range []string{"g1", "g2"} { // g2 has no live replica
		for p := range 6 { // 4 and 5 beyond the topology's partitions
			if got, want := s.requestSubject(group, p), streams.RequestSubject(group, p); got != want {
				t.Errorf("requestSubject(%q, %d) = %q, want %q", group, p, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.requestSubject("g1", 3) }); n != 0 {
		t.Errorf("requestSubject of a live group: %v allocations, want 0", n)
	}
	if (&Snapshot{}).requestSubject("g1", 1) != streams.RequestSubject("g1", 1) {
		t.Error("a snapshot without subjects made the wrong one")
	}
}
