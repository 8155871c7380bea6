package streams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

// server starts an embedded JetStream server on disk and returns a client
// connection and a JetStream context on it, both cleaned up with the test.
func server(t *testing.T) (*streams.Embedded, *nats.Conn, jetstream.JetStream) {
	return testkit.JetStream(t)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func streamNames(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
	t.Helper()
	var names []string
	l := js.StreamNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func checkRequestStream(t *testing.T, ctx context.Context, js jetstream.JetStream, p int, topo streams.Topology) {
	t.Helper()
	topo = topo.WithDefaults()
	s, err := js.Stream(ctx, streams.StreamName(p))
	if err != nil {
		t.Fatalf("stream %s: %v", streams.StreamName(p), err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.LimitsPolicy {
		t.Errorf("%s retention = %v, want limits", cfg.Name, cfg.Retention)
	}
	if cfg.Discard != jetstream.DiscardOld {
		t.Errorf("%s discard = %v, want old", cfg.Name, cfg.Discard)
	}
	if cfg.MaxAge != topo.MaxAge {
		t.Errorf("%s MaxAge = %v, want %v", cfg.Name, cfg.MaxAge, topo.MaxAge)
	}
	if cfg.MaxBytes != topo.MaxBytes {
		t.Errorf("%s MaxBytes = %d, want %d", cfg.Name, cfg.MaxBytes, topo.MaxBytes)
	}
	if cfg.MaxMsgSize != topo.MaxMsgSize {
		t.Errorf("%s MaxMsgSize = %d, want %d", cfg.Name, cfg.MaxMsgSize, topo.MaxMsgSize)
	}
	if cfg.Duplicates != topo.DuplicateWindow {
		t.Errorf("%s Duplicates = %v, want %v", cfg.Name, cfg.Duplicates, topo.DuplicateWindow)
	}
	wantStorage := jetstream.FileStorage
	if topo.Memory {
		wantStorage = jetstream.MemoryStorage
	}
	if cfg.Storage != wantStorage {
		t.Errorf("%s storage = %v, want %v", cfg.Name, cfg.Storage, wantStorage)
	}
	if cfg.Replicas != topo.Replicas {
		t.Errorf("%s replicas = %d, want %d", cfg.Name, cfg.Replicas, topo.Replicas)
	}
	// The stream captures exactly partition p of every group.
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "mcp.req.*."+itoa(p) {
		t.Errorf("%s subjects = %v, want [mcp.req.*.%d]", cfg.Name, cfg.Subjects, p)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func recordedTopology(t *testing.T, ctx context.Context, js jetstream.JetStream) (streams.Topology, uint64) {
	t.Helper()
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, streams.TopologyKey)
	if err != nil {
		t.Fatalf("get %s: %v", streams.TopologyKey, err)
	}
	var rec streams.Topology
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatalf("decoding recorded topology %s: %v", e.Value(), err)
	}
	return rec, e.Revision()
}

func TestProvision(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	topo := streams.Topology{
		Partitions:      3,
		MaxAge:          90 * time.Minute,
		MaxBytes:        8 << 20,
		MaxMsgSize:      1 << 20,
		DuplicateWindow: 30 * time.Second,
		SessionTTL:      time.Hour,
		SessionMaxBytes: 16 << 20,
		ResultTTL:       5 * time.Minute,
		TaskTTL:         2 * time.Hour,
	}
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	want := []string{"KV_" + streams.RegistryBucket, "KV_" + streams.ResultBucket, "KV_" + streams.SessionBucket,
		"KV_" + streams.TaskBucket, streams.DLQStream, streams.EventsStream, "MCP_REQ_0", "MCP_REQ_1", "MCP_REQ_2"}
	slices.Sort(want)
	if got := streamNames(t, ctx, js); !slices.Equal(got, want) {
		t.Errorf("streams = %v, want %v", got, want)
	}
	for p := 0; p < 3; p++ {
		checkRequestStream(t, ctx, js, p, topo)
	}

	dlq, err := js.Stream(ctx, streams.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	dcfg := dlq.CachedInfo().Config
	if dcfg.Retention != jetstream.LimitsPolicy || dcfg.Discard != jetstream.DiscardOld ||
		!slices.Equal(dcfg.Subjects, []string{"mcp.dlq.>"}) || dcfg.MaxBytes != topo.MaxBytes ||
		dcfg.Storage != jetstream.FileStorage {
		t.Errorf("DLQ config unexpected: %+v", dcfg)
	}

	// Buckets and their limits.
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := reg.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs.History() != 1 || rs.TTL() != 0 || rs.LimitMarkerTTL() != time.Minute {
		t.Errorf("registry bucket: history %d ttl %v limit-marker-ttl %v, want 1, 0, 1m",
			rs.History(), rs.TTL(), rs.LimitMarkerTTL())
	}
	ses, err := js.KeyValue(ctx, streams.SessionBucket)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := ses.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss.TTL() != time.Hour || ss.History() != 1 || ss.LimitMarkerTTL() != time.Minute {
		t.Errorf("session bucket: ttl %v history %d limit-marker-ttl %v, want 1h, 1, 1m", ss.TTL(), ss.History(), ss.LimitMarkerTTL())
	}
	if c := ss.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; c.MaxBytes != 16<<20 || c.Discard != jetstream.DiscardOld {
		t.Errorf("session bucket MaxBytes = %d, discard %v; want %d, old", c.MaxBytes, c.Discard, 16<<20)
	}
	res, err := js.KeyValue(ctx, streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	rst, err := res.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rst.TTL() != 5*time.Minute || rst.History() != 1 {
		t.Errorf("result bucket: ttl %v history %d, want 5m, 1", rst.TTL(), rst.History())
	}
	if c := rst.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; c.MaxBytes != topo.MaxBytes || c.Discard != jetstream.DiscardOld {
		t.Errorf("result bucket MaxBytes = %d, discard %v; want %d, old", c.MaxBytes, c.Discard, topo.MaxBytes)
	}
	tasks, err := streams.TaskBucketOf(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	tst, err := tasks.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := tst.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; tst.TTL() != 2*time.Hour || cfg.Storage != jetstream.FileStorage {
		t.Errorf("task bucket: ttl %v storage %v, want 2h on file", tst.TTL(), cfg.Storage)
	}

	// The topology is recorded with its defaults filled in.
	rec, rev1 := recordedTopology(t, ctx, js)
	if rec != topo.WithDefaults() {
		t.Errorf("recorded topology\n %+v\nwant\n %+v", rec, topo.WithDefaults())
	}

	// Idempotent: a second identical run changes no stream.
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if got := streamNames(t, ctx, js); !slices.Equal(got, want) {
		t.Errorf("after second Provision streams = %v, want %v", got, want)
	}
	for p := 0; p < 3; p++ {
		checkRequestStream(t, ctx, js, p, topo)
	}
	if rec2, rev2 := recordedTopology(t, ctx, js); rec2 != rec || rev2 < rev1 {
		t.Errorf("second Provision recorded %+v rev %d (was rev %d)", rec2, rev2, rev1)
	}

	// Changed limits update the streams in place and the record.
	topo.MaxBytes = 16 << 20
	topo.MaxAge = 2 * time.Hour
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatalf("Provision with changed limits: %v", err)
	}
	for p := 0; p < 3; p++ {
		checkRequestStream(t, ctx, js, p, topo)
	}
	if rec3, _ := recordedTopology(t, ctx, js); rec3 != topo.WithDefaults() {
		t.Errorf("recorded topology after update\n %+v\nwant\n %+v", rec3, topo.WithDefaults())
	}
}

func TestProvisionMemoryStorage(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	topo := streams.Topology{Partitions: 1, Memory: true}
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	checkRequestStream(t, ctx, js, 0, topo)
	// Registry state is durable whatever the request storage.
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage != jetstream.FileStorage {
		t.Error("registry bucket is not on file storage")
	}
}

func TestProvisionReportsError(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	// A single server cannot hold three replicas.
	err := streams.Provision(ctx, js, streams.Topology{Partitions: 1, Replicas: 3})
	if err == nil {
		t.Fatal("Provision with 3 replicas on one server succeeded")
	}
	if !bytes.Contains([]byte(err.Error()), []byte(streams.StreamName(0))) {
		t.Errorf("error %q does not name the stream", err)
	}
}

func TestToolKeysAreUsableKVKeys(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"with space", "a/b/c", "über-tool", "工具", "emoji 🚀", "dots.in.name", "a*b>c", "tool."}
	for _, n := range names {
		if _, err := kv.Put(ctx, streams.ToolKey(n), []byte(n)); err != nil {
			t.Errorf("Put(ToolKey(%q) = %q): %v", n, streams.ToolKey(n), err)
		}
	}
	for _, n := range names {
		e, err := kv.Get(ctx, streams.ToolKey(n))
		if err != nil || string(e.Value()) != n {
			t.Errorf("Get(ToolKey(%q)): %v %q", n, err, e)
		}
	}
	// A tools watcher sees exactly the tools.
	keys, err := kv.ListKeysFiltered(ctx, streams.ToolKeyPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != len(names) {
		t.Errorf("%d keys match %s*, want %d", n, streams.ToolKeyPrefix, len(names))
	}
}

func TestEnsure(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	first := streams.Topology{Partitions: 2, AckWait: 3 * time.Second}
	got, err := streams.Ensure(ctx, js, first)
	if err != nil {
		t.Fatal(err)
	}
	if got != first.WithDefaults() {
		t.Errorf("Ensure on empty server = %+v, want %+v", got, first.WithDefaults())
	}
	if rec, _ := recordedTopology(t, ctx, js); rec != first.WithDefaults() {
		t.Errorf("recorded %+v, want %+v", rec, first.WithDefaults())
	}
	before := streamNames(t, ctx, js)
	if !slices.Contains(before, "MCP_REQ_1") || slices.Contains(before, "MCP_REQ_2") {
		t.Fatalf("streams after first Ensure = %v", before)
	}
	_, rev := recordedTopology(t, ctx, js)

	// Another process with other flags gets the recorded topology.
	second := streams.Topology{Partitions: 8, AckWait: time.Minute, MaxBytes: 1 << 20}
	got, err = streams.Ensure(ctx, js, second)
	if err != nil {
		t.Fatal(err)
	}
	if got != first.WithDefaults() {
		t.Errorf("Ensure on provisioned server = %+v, want recorded %+v", got, first.WithDefaults())
	}
	if after := streamNames(t, ctx, js); !slices.Equal(after, before) {
		t.Errorf("Ensure changed streams: %v -> %v", before, after)
	}
	if _, rev2 := recordedTopology(t, ctx, js); rev2 != rev {
		t.Errorf("Ensure rewrote the recorded topology: revision %d -> %d", rev, rev2)
	}
	checkRequestStream(t, ctx, js, 0, first)
}

func TestEnsureCorruptRecord(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, streams.TopologyKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Ensure(ctx, js, streams.Topology{}); err == nil {
		t.Error("Ensure with a corrupt recorded topology succeeded")
	}
}

func TestEnsureGroup(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	topo := streams.Topology{Partitions: 3, AckWait: 2 * time.Second, MaxDeliver: 7, MaxAckPending: 64}
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.EnsureGroup(ctx, js, topo, "bad.name"); err == nil {
		t.Error("EnsureGroup accepted group name bad.name")
	}
	if _, err := streams.EnsureGroup(ctx, js, topo, ""); err == nil {
		t.Error("EnsureGroup accepted an empty group name")
	}
	check := func(cs []jetstream.Consumer) {
		t.Helper()
		if len(cs) != 3 {
			t.Fatalf("got %d consumers, want 3", len(cs))
		}
		for p, c := range cs {
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg := info.Config
			if info.Stream != streams.StreamName(p) {
				t.Errorf("consumer %d on stream %s, want %s", p, info.Stream, streams.StreamName(p))
			}
			if cfg.Durable != "grp-g1" || info.Name != "grp-g1" {
				t.Errorf("consumer %d durable %q name %q, want grp-g1", p, cfg.Durable, info.Name)
			}
			if cfg.FilterSubject != streams.RequestSubject("g1", p) {
				t.Errorf("consumer %d filter %q, want %q", p, cfg.FilterSubject, streams.RequestSubject("g1", p))
			}
			if cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.AckWait != 2*time.Second ||
				cfg.MaxDeliver != 7 || cfg.MaxAckPending != 64 || cfg.DeliverPolicy != jetstream.DeliverAllPolicy {
				t.Errorf("consumer %d config: ack %v wait %v maxDeliver %d maxAckPending %d deliver %v",
					p, cfg.AckPolicy, cfg.AckWait, cfg.MaxDeliver, cfg.MaxAckPending, cfg.DeliverPolicy)
			}
		}
	}
	cs, err := streams.EnsureGroup(ctx, js, topo, "g1")
	if err != nil {
		t.Fatal(err)
	}
	check(cs)
	// Idempotent.
	cs, err = streams.EnsureGroup(ctx, js, topo, "g1")
	if err != nil {
		t.Fatalf("second EnsureGroup: %v", err)
	}
	check(cs)
	for p := 0; p < 3; p++ {
		s, err := js.Stream(ctx, streams.StreamName(p))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		l := s.ConsumerNames(ctx)
		for range l.Name() {
			n++
		}
		if n != 1 {
			t.Errorf("stream %s has %d consumers after two EnsureGroup, want 1", streams.StreamName(p), n)
		}
	}

	// A message for group g1 in partition 1 reaches only consumer 1; one for
	// another group does not reach g1 at all.
	if _, err := js.Publish(ctx, streams.RequestSubject("g1", 1), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, streams.RequestSubject("other", 1), []byte("y")); err != nil {
		t.Fatal(err)
	}
	pending := func(c jetstream.Consumer) uint64 {
		t.Helper()
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending
	}
	// A consumer counts a stored message after the publish is
	// acknowledged, and nothing signals when.
	testkit.Eventually(t, "consumer 1 to count the message for g1 in partition 1", 5*time.Second, func() bool {
		return pending(cs[1]) == 1
	})
	for p, c := range cs {
		want := uint64(0)
		if p == 1 {
			want = 1
		}
		if got := pending(c); got != want {
			t.Errorf("consumer %d NumPending = %d, want %d", p, got, want)
		}
	}

	// An updated topology updates the consumers.
	topo.AckWait = 5 * time.Second
	cs, err = streams.EnsureGroup(ctx, js, topo, "g1")
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range cs {
		if got := c.CachedInfo().Config.AckWait; got != 5*time.Second {
			t.Errorf("consumer %d AckWait after update = %v, want 5s", p, got)
		}
	}
}

func TestEnsureGroupWithoutStreams(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if _, err := streams.EnsureGroup(ctx, js, streams.Topology{Partitions: 1}, "g1"); err == nil {
		t.Error("EnsureGroup on an unprovisioned server succeeded")
	}
}

// TestFullStreamDropsOldest: a request stream at its byte limit makes room
// by dropping its oldest requests, so publishing goes on.
func TestFullStreamDropsOldest(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1, MaxBytes: 4096}); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 700)
	subj := streams.RequestSubject("g1", 0)
	for i := 0; i < 100; i++ {
		if _, err := js.Publish(ctx, subj, payload, jetstream.WithMsgID("k-"+itoa(i))); err != nil {
			t.Fatalf("publish %d to a full stream: %v", i, err)
		}
	}
	s, err := js.Stream(ctx, streams.StreamName(0))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := info.State
	if st.LastSeq != 100 || st.Bytes > 4096 || st.Msgs == 0 || st.FirstSeq != st.LastSeq-st.Msgs+1 {
		t.Errorf("stream state first %d last %d msgs %d bytes %d; want the newest of 100 within 4096 bytes", st.FirstSeq, st.LastSeq, st.Msgs, st.Bytes)
	}
}

// TestFullBucketsDropOldest: results are a cache, and sessions can be
// started again; a result or session bucket at its byte limit evicts its
// oldest entries so new ones are still stored, also after provisioning
// again (updating a bucket resets its discard policy).
func TestFullBucketsDropOldest(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	topo := streams.Topology{Partitions: 1, MaxBytes: 4096, SessionMaxBytes: 4096}
	for range 2 {
		if err := streams.Provision(ctx, js, topo); err != nil {
			t.Fatal(err)
		}
	}
	for _, bucket := range []string{streams.ResultBucket, streams.SessionBucket} {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.Repeat([]byte("r"), 500)
		for i := 0; i < 50; i++ {
			if _, err := kv.Put(ctx, "k"+itoa(i), payload); err != nil {
				t.Fatalf("%s: storing entry %d in a full bucket: %v", bucket, i, err)
			}
		}
		if e, err := kv.Get(ctx, "k49"); err != nil || len(e.Value()) != len(payload) {
			t.Fatalf("%s: newest entry: %v", bucket, err)
		}
		if _, err := kv.Get(ctx, "k0"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s: oldest entry: %v, want it evicted", bucket, err)
		}
	}
}

// TestProvisionNeverRefusesNewEntries: provisioning a running deployment
// again never sets the result or session bucket to refuse new entries when
// full, not even for the moment between two updates: every stream
// configuration provisioning sends for them keeps Discard Old.
func TestProvisionNeverRefusesNewEntries(t *testing.T) {
	_, nc, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1, MaxBytes: 4096, SessionMaxBytes: 4096}); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("$JS.API.STREAM.*.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1, MaxBytes: 8192, SessionMaxBytes: 8192}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	for {
		m, err := sub.NextMsg(0)
		if err != nil {
			break
		}
		var cfg jetstream.StreamConfig
		if len(m.Data) == 0 || json.Unmarshal(m.Data, &cfg) != nil || cfg.Name == "" {
			continue // an info request, not a configuration
		}
		sent[cfg.Name]++
		evicting := cfg.Name == "KV_"+streams.ResultBucket || cfg.Name == "KV_"+streams.SessionBucket
		if evicting && cfg.Discard != jetstream.DiscardOld {
			t.Errorf("%s: provisioning sent %s with discard %v, want old", cfg.Name, m.Subject, cfg.Discard)
		}
	}
	for _, b := range []string{streams.ResultBucket, streams.SessionBucket} {
		if sent["KV_"+b] == 0 {
			t.Errorf("KV_%s: provisioning sent no configuration (sent %v)", b, sent)
		}
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; c.MaxBytes != 8192 || c.Discard != jetstream.DiscardOld {
			t.Errorf("%s after provisioning again: MaxBytes %d discard %v, want 8192, old", b, c.MaxBytes, c.Discard)
		}
	}
}

func TestDuplicateWindowDedupes(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	subj := streams.RequestSubject("g1", 0)
	a1, err := js.Publish(ctx, subj, []byte("one"), jetstream.WithMsgID("same-key"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := js.Publish(ctx, subj, []byte("two"), jetstream.WithMsgID("same-key"))
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Errorf("second publish with same Nats-Msg-Id: duplicate %v seq %d (first seq %d)", a2.Duplicate, a2.Sequence, a1.Sequence)
	}
}

// A deployment provisioned with the former 2-minute duplicate window gets
// the new default when provision runs again: the stream's config is
// updated in place, its messages kept, and it still drops a copy.
func TestProvisionUpdatesDuplicateWindow(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	old := streams.Topology{Partitions: 2, DuplicateWindow: 2 * time.Minute}
	if err := streams.Provision(ctx, js, old); err != nil {
		t.Fatal(err)
	}
	subj := streams.RequestSubject("g1", 1)
	first, err := js.Publish(ctx, subj, []byte("one"), jetstream.WithMsgID("kept-key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		s, err := js.Stream(ctx, streams.StreamName(p))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Duplicates; got != streams.DefaultDuplicateWindow {
			t.Errorf("%s Duplicates after provisioning again = %v, want %v", streams.StreamName(p), got, streams.DefaultDuplicateWindow)
		}
		if p == 1 && s.CachedInfo().State.Msgs != 1 {
			t.Errorf("%s holds %d messages after the update, want 1", streams.StreamName(p), s.CachedInfo().State.Msgs)
		}
	}
	again, err := js.Publish(ctx, subj, []byte("two"), jetstream.WithMsgID("kept-key"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("a copy published after the update: duplicate %v seq %d (first seq %d)", again.Duplicate, again.Sequence, first.Sequence)
	}
	if rec, _ := recordedTopology(t, ctx, js); rec.DuplicateWindow != streams.DefaultDuplicateWindow {
		t.Errorf("recorded DuplicateWindow = %v, want %v", rec.DuplicateWindow, streams.DefaultDuplicateWindow)
	}
}

// TestProvisionKeepsPartitionCount: a recorded topology's partition count
// does not change: running gateways and workers read it once, so a
// request on a partition the others do not serve would wait out its
// deadline. Provision refuses, before it changes anything.
func TestProvisionKeepsPartitionCount(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	err := streams.Provision(ctx, js, streams.Topology{Partitions: 5, MaxAge: 2 * time.Hour})
	if !errors.Is(err, streams.ErrPartitionsChanged) {
		t.Fatalf("provisioning 5 partitions over 3: %v, want ErrPartitionsChanged", err)
	}
	if _, err := js.Stream(ctx, streams.StreamName(3)); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("%s after the refusal: %v, want no such stream", streams.StreamName(3), err)
	}
	if rec, _ := recordedTopology(t, ctx, js); rec.Partitions != 3 || rec.MaxAge != time.Hour {
		t.Errorf("recorded after the refusal: %d partitions, max age %v; want 3 and 1h, unchanged", rec.Partitions, rec.MaxAge)
	}
	rec, ok, err := streams.RecordedTopology(ctx, js)
	if err != nil || !ok || rec.Partitions != 3 {
		t.Errorf("RecordedTopology: %+v, %v, %v; want 3 partitions", rec, ok, err)
	}
}

// TestDuplicateWindowWithinMaxAge: the duplicate window defaults to the
// max age when that is shorter than 60 s (the server refuses a longer
// window), and one set longer is refused in the settings' words, not the
// server's.
func TestDuplicateWindowWithinMaxAge(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 1, MaxAge: 30 * time.Second}); err != nil {
		t.Fatalf("a 30s max age: %v", err)
	}
	s, err := js.Stream(ctx, streams.StreamName(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 30*time.Second {
		t.Errorf("duplicate window %v, want the max age, 30s", got)
	}
	err = streams.Provision(ctx, js, streams.Topology{Partitions: 1, MaxAge: 30 * time.Second, DuplicateWindow: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "duplicate window (1m0s) is longer than the request streams' max age (30s)") {
		t.Errorf("a 1m window with a 30s max age: %v, want it refused naming both", err)
	}
}
