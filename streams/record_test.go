package streams_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestRecordNames: a group's record stream and subjects, a key that cannot
// be one subject token hashed as in the result bucket.
func TestRecordNames(t *testing.T) {
	if got := streams.RecordStream("demo"); got != "MCP_RESULTS_demo" {
		t.Errorf("RecordStream = %q", got)
	}
	if got := streams.RecordSubject("demo", "k-1"); got != "mcp.results.demo.k-1" {
		t.Errorf("RecordSubject = %q", got)
	}
	got := streams.RecordSubject("demo", "a.b *>")
	if got != "mcp.results.demo."+streams.ResultKey("a.b *>") || strings.Count(got, ".") != 3 || strings.ContainsAny(got, " *>") {
		t.Errorf("RecordSubject of a key with dots and wildcards = %q", got)
	}
}

// TestRecordConfig: the record stream's limits, their defaults and what
// it takes from the topology.
func TestRecordConfig(t *testing.T) {
	c := streams.Topology{}.RecordConfig("demo", 0, 0)
	if c.Name != "MCP_RESULTS_demo" || len(c.Subjects) != 1 || c.Subjects[0] != "mcp.results.demo.*" || c.Description == "" {
		t.Errorf("name %q, subjects %q, description %q", c.Name, c.Subjects, c.Description)
	}
	if c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardOld || c.MaxMsgsPerSubject != 1 || !c.AllowDirect {
		t.Errorf("retention %v, discard %v, per subject %d, direct %v; want limits, old, 1, true", c.Retention, c.Discard, c.MaxMsgsPerSubject, c.AllowDirect)
	}
	if c.MaxAge != time.Hour || c.MaxBytes != 64<<20 {
		t.Errorf("defaults: MaxAge %s, MaxBytes %d; want 1h, 64 MiB", c.MaxAge, c.MaxBytes)
	}
	if c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.MaxMsgSize != 8<<20 {
		t.Errorf("storage %v, replicas %d, MaxMsgSize %d", c.Storage, c.Replicas, c.MaxMsgSize)
	}

	topo := streams.Topology{Memory: true, Replicas: 3, MaxAge: 20 * time.Minute, MaxMsgSize: 1 << 20}
	if c := topo.RecordConfig("g", 0, 0); c.MaxAge != 20*time.Minute || c.Storage != jetstream.MemoryStorage || c.Replicas != 3 || c.MaxMsgSize != 1<<20 {
		t.Errorf("from the topology: MaxAge %s, storage %v, replicas %d, MaxMsgSize %d", c.MaxAge, c.Storage, c.Replicas, c.MaxMsgSize)
	}
	if c := topo.RecordConfig("g", 5*time.Minute, 1000); c.MaxAge != 5*time.Minute || c.MaxBytes != 1000 {
		t.Errorf("given: MaxAge %s, MaxBytes %d; want 5m, 1000", c.MaxAge, c.MaxBytes)
	}
}

// record publishes rep as a worker does, and waits for the stream's
// acknowledgement.
func record(t *testing.T, ctx context.Context, js jetstream.JetStream, group string, rep *schema.Reply) {
	t.Helper()
	b, err := rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, streams.RecordSubject(group, rep.Key), b); err != nil {
		t.Fatalf("recording %s: %v", rep.Key, err)
	}
}

// TestLookupRecord: no stream, no record, a record, the newer record of a
// key replacing the older, and the errors that are neither.
func TestLookupRecord(t *testing.T) {
	_, nc, js := server(t)
	ctx := testCtx(t)

	_, _, err := streams.LookupRecord(ctx, js, "demo", "k1")
	if !errors.Is(err, streams.ErrNoRecordStream) || errors.Is(err, streams.ErrNotRecorded) {
		t.Fatalf("no stream: %v, want ErrNoRecordStream", err)
	}
	s, err := js.CreateStream(ctx, streams.Topology{}.RecordConfig("demo", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err = streams.LookupRecord(ctx, js, "demo", "k1"); !errors.Is(err, streams.ErrNotRecorded) || errors.Is(err, streams.ErrNoRecordStream) {
		t.Fatalf("no record: %v, want ErrNotRecorded", err)
	}

	before := time.Now()
	result := []byte{0x81, 0xa1, 'a', 0x01} // {"a": 1}
	record(t, ctx, js, "demo", &schema.Reply{Key: "k1", Result: result, RunNs: 1234})
	after := time.Now()
	rep, at, err := streams.LookupRecord(ctx, js, "demo", "k1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Key != "k1" || !bytes.Equal(rep.Result, result) || rep.Error != nil || rep.RunNs != 1234 {
		t.Errorf("record %+v", rep)
	}
	if at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
		t.Errorf("recorded at %s, want between %s and %s", at, before, after)
	}

	// A redelivered request's new run: its record replaces the first.
	record(t, ctx, js, "demo", &schema.Reply{Key: "k1", Error: schema.Errorf(schema.CodeInternalError, "boom"), RunNs: 99})
	record(t, ctx, js, "demo", &schema.Reply{Key: "k2", Result: result, RunNs: 5})
	if rep, _, err = streams.LookupRecord(ctx, js, "demo", "k1"); err != nil {
		t.Fatal(err)
	}
	if rep.Error == nil || rep.Error.Message != "boom" || rep.Result != nil || rep.RunNs != 99 {
		t.Errorf("newer record %+v, error %v", rep, rep.Error)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d records of 2 keys, want 2", info.State.Msgs)
	}

	// Neither "not recorded" nor "no stream": an undecodable record, an
	// invalid group name, the server gone.
	if _, err := js.Publish(ctx, streams.RecordSubject("demo", "junk"), []byte{0xc1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what  string
		group string
		key   string
	}{{"undecodable", "demo", "junk"}, {"bad group", "de.mo", "k1"}, {"closed", "demo", "k1"}} {
		if c.what == "closed" {
			nc.Close()
		}
		_, _, err := streams.LookupRecord(ctx, js, c.group, c.key)
		if err == nil || errors.Is(err, streams.ErrNotRecorded) || errors.Is(err, streams.ErrNoRecordStream) {
			t.Errorf("%s: %v", c.what, err)
		}
	}
}

// TestRecordStreamDropsOldest: past MaxBytes the oldest records go, and
// the newest stay readable.
func TestRecordStreamDropsOldest(t *testing.T) {
	_, _, js := server(t)
	ctx := testCtx(t)
	const maxBytes = 16 << 10
	s, err := js.CreateStream(ctx, streams.Topology{}.RecordConfig("demo", 0, maxBytes))
	if err != nil {
		t.Fatal(err)
	}
	result := append([]byte{0xc5, 0x04, 0x00}, bytes.Repeat([]byte{'x'}, 1024)...) // 1 KiB of binary
	const n = 40
	for i := range n {
		record(t, ctx, js, "demo", &schema.Reply{Key: fmt.Sprintf("k%d", i), Result: result, RunNs: int64(i + 1)})
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > maxBytes || info.State.FirstSeq <= 1 || info.State.LastSeq != n || info.State.Msgs >= n {
		t.Errorf("after %d records of 1 KiB: %d bytes, %d records, sequences %d-%d; want at most %d bytes, the first dropped",
			n, info.State.Bytes, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, maxBytes)
	}
	if _, _, err := streams.LookupRecord(ctx, js, "demo", "k0"); !errors.Is(err, streams.ErrNotRecorded) {
		t.Errorf("oldest record: %v, want ErrNotRecorded", err)
	}
	rep, _, err := streams.LookupRecord(ctx, js, "demo", fmt.Sprintf("k%d", n-1))
	if err != nil || rep.RunNs != n {
		t.Errorf("newest record: %+v, %v", rep, err)
	}
}
