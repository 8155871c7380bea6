package streams_test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
)

func TestPartitionKnownValues(t *testing.T) {
	// Computed once with an independent FNV-1a 32 implementation. These
	// values must never change: a session's requests would split over two
	// partitions across a rolling upgrade.
	cases := []struct {
		key     string
		n, want int
	}{
		{"", 4, 1},
		{"", 7, 2},
		{"", 16, 5},
		{"a", 4, 0},
		{"a", 7, 5},
		{"a", 16, 12},
		{"session-1", 4, 1},
		{"session-1", 7, 2},
		{"session-1", 16, 13},
		{"b4f2c9e0-1a2b-4c3d-8e9f-0123456789ab", 4, 2},
		{"b4f2c9e0-1a2b-4c3d-8e9f-0123456789ab", 7, 0},
		{"b4f2c9e0-1a2b-4c3d-8e9f-0123456789ab", 16, 14},
		{"héllo", 4, 0},
		{"héllo", 7, 4},
		{"héllo", 16, 0},
	}
	for _, c := range cases {
		if got := streams.Partition(c.key, c.n); got != c.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

func TestPartitionDegenerateCounts(t *testing.T) {
	for _, n := range []int{-3, 0, 1} {
		for _, k := range []string{"", "a", "session-1"} {
			if got := streams.Partition(k, n); got != 0 {
				t.Errorf("Partition(%q, %d) = %d, want 0", k, n, got)
			}
		}
	}
}

func TestPartitionInRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 16; n++ {
		for i := 0; i < 500; i++ {
			k := fmt.Sprintf("k-%d-%x", i, r.Uint64())
			p := streams.Partition(k, n)
			if p < 0 || p >= n {
				t.Fatalf("Partition(%q, %d) = %d, out of [0,%d)", k, n, p, n)
			}
			if again := streams.Partition(k, n); again != p {
				t.Fatalf("Partition(%q, %d) not deterministic: %d then %d", k, n, p, again)
			}
		}
	}
}

func TestPartitionSpread(t *testing.T) {
	const keys, n = 10000, 4
	r := rand.New(rand.NewPCG(42, 7))
	var counts [n]int
	for i := 0; i < keys; i++ {
		counts[streams.Partition(fmt.Sprintf("%016x", r.Uint64()), n)]++
	}
	want := keys / n
	for p, c := range counts {
		if c < want*85/100 || c > want*115/100 {
			t.Errorf("partition %d got %d of %d keys, want %d ±15%% (all: %v)", p, c, keys, want, counts)
		}
	}
}

func TestSubjectsAndNames(t *testing.T) {
	checks := []struct{ got, want string }{
		{streams.RequestSubject("demo", 0), "mcp.req.demo.0"},
		{streams.RequestSubject("my_group-2", 13), "mcp.req.my_group-2.13"},
		{streams.StreamName(0), "MCP_REQ_0"},
		{streams.StreamName(11), "MCP_REQ_11"},
		{streams.ConsumerName("demo"), "grp-demo"},
		{streams.ReplySubject("gw-1"), "mcp.reply.gw-1"},
		{streams.DLQSubject("demo"), "mcp.dlq.demo"},
		{streams.HeartbeatKey("demo", "abc123"), "hb.demo.abc123"},
		{streams.ToolKey("echo"), "tool.ZWNobw"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// Every partition's request subject must be captured by a request stream
	// subject filter, and a DLQ subject by the DLQ stream (checked on a real
	// server in TestProvision); here: shape only.
	if !strings.HasPrefix(streams.DLQSubject("x"), "mcp.dlq.") {
		t.Errorf("DLQSubject outside mcp.dlq.>")
	}
}

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"demo", true},
		{"a", true},
		{"A-b_C-9", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"a.b", false},
		{"a b", false},
		{"a*", false},
		{"a>", false},
		{"a/b", false},
		{"héllo", false},
		{"demo\n", false},
		{"\ndemo", false},
	}
	for _, c := range cases {
		if got := streams.ValidName(c.name); got != c.ok {
			t.Errorf("ValidName(%q) = %v, want %v", c.name, got, c.ok)
		}
		err := streams.CheckName("group", c.name)
		if (err == nil) != c.ok {
			t.Errorf("CheckName(group, %q) = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "group") {
			t.Errorf("CheckName error %q does not name the kind", err)
		}
	}
}

// kvKeyRE is the key syntax nats.go's KV accepts.
var kvKeyRE = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

func TestToolKey(t *testing.T) {
	names := []string{
		"echo", "Echo", "with space", "a/b/c", "slash/", "über-tool", "工具", "emoji 🚀",
		"dots.in.name", "a*b>c", "=", "-", "tool.", "x\ny", strings.Repeat("long", 40),
	}
	seen := map[string]string{}
	for _, n := range names {
		k := streams.ToolKey(n)
		if !strings.HasPrefix(k, streams.ToolKeyPrefix) {
			t.Errorf("ToolKey(%q) = %q lacks prefix %q", n, k, streams.ToolKeyPrefix)
		}
		if !kvKeyRE.MatchString(k) || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			t.Errorf("ToolKey(%q) = %q is not a valid KV key", n, k)
		}
		// One token after the prefix, so a "tool.>" watcher sees tools only
		// and a name cannot spill into another key space.
		if strings.Contains(strings.TrimPrefix(k, streams.ToolKeyPrefix), ".") {
			t.Errorf("ToolKey(%q) = %q has more than one token after the prefix", n, k)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("ToolKey(%q) == ToolKey(%q) == %q", n, prev, k)
		}
		seen[k] = n
	}
}

func TestWithDefaults(t *testing.T) {
	d := streams.Topology{}.WithDefaults()
	want := streams.Topology{
		Partitions:      4,
		Replicas:        1,
		MaxAge:          time.Hour,
		MaxBytes:        256 << 20,
		MaxMsgSize:      8 << 20,
		DuplicateWindow: 60 * time.Second,
		AckWait:         4 * time.Second,
		MaxDeliver:      5,
		MaxAckPending:   4096,
		SessionTTL:      24 * time.Hour,
		SessionMaxBytes: 1 << 30,
		ResultTTL:       10 * time.Minute,
		TaskTTL:         time.Hour,
	}
	if d != want {
		t.Errorf("zero.WithDefaults() =\n %+v\nwant\n %+v", d, want)
	}
	set := streams.Topology{
		Partitions:      7,
		Replicas:        3,
		Memory:          true,
		MaxAge:          time.Minute,
		MaxBytes:        1234,
		MaxMsgSize:      99,
		DuplicateWindow: time.Second,
		AckWait:         2 * time.Second,
		MaxDeliver:      9,
		MaxAckPending:   17,
		SessionTTL:      3 * time.Minute,
		SessionMaxBytes: 4321,
		ResultTTL:       4 * time.Minute,
		TaskTTL:         5 * time.Minute,
	}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed set fields:\n %+v\nwant\n %+v", got, set)
	}
	// Negative values are not meaningful and take the defaults too.
	neg := streams.Topology{Partitions: -1, MaxAge: -time.Second, MaxBytes: -1, AckWait: -1}.WithDefaults()
	if neg.Partitions != 4 || neg.MaxAge != time.Hour || neg.MaxBytes != 256<<20 || neg.AckWait != 4*time.Second {
		t.Errorf("negative fields not defaulted: %+v", neg)
	}
	// Idempotent.
	if d.WithDefaults() != d {
		t.Errorf("WithDefaults not idempotent")
	}
}

func TestStartEmbeddedRequiresDir(t *testing.T) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{})
	if err == nil {
		emb.Shutdown()
		t.Fatal("StartEmbedded without Dir succeeded")
	}
}

func TestStartEmbeddedBadListen(t *testing.T) {
	for _, l := range []string{"no-port", "127.0.0.1:http-ish"} {
		emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: l})
		if err == nil {
			emb.Shutdown()
			t.Errorf("StartEmbedded(Listen %q) succeeded", l)
		}
	}
}

// TestStartEmbeddedInProcessOnly: with a Dir alone (what testkit.JetStream
// gives), the server takes in-process connections only, with JetStream.
func TestStartEmbeddedInProcessOnly(t *testing.T) {
	emb, nc, _ := testkit.JetStream(t)
	if u := emb.ClientURL(); u != "" {
		t.Errorf("ClientURL without Listen = %q, want empty", u)
	}
	if !emb.Server().JetStreamEnabled() {
		t.Error("JetStream not enabled")
	}
	roundTrip(t, nc)
}

func TestStartEmbeddedTCP(t *testing.T) {
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0", Name: "tcp-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	u := emb.ClientURL()
	if !strings.HasPrefix(u, "nats://127.0.0.1:") || strings.HasSuffix(u, ":0") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", u)
	}
	if got := emb.Server().Name(); got != "tcp-test" {
		t.Errorf("server name = %q, want tcp-test", got)
	}
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats.Connect(%s): %v", u, err)
	}
	t.Cleanup(nc.Close)
	if got := nc.ConnectedUrl(); got != u {
		t.Errorf("connected to %q, want %q", got, u)
	}
	roundTrip(t, nc)
}

// roundTrip checks that nc can publish and receive.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("rt.check")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Publish("rt.check", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "ping" {
		t.Errorf("got %q, want ping", m.Data)
	}
}

func TestResultKey(t *testing.T) {
	for _, k := range []string{"abc", "A-b_c=9", "0123456789abcdef0123456789abcdef", strings.Repeat("k", 128)} {
		if got := streams.ResultKey(k); got != k {
			t.Errorf("ResultKey(%q) = %q, want it unchanged", k, got)
		}
	}
	kvKey := regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)
	seen := map[string]string{}
	for _, k := range []string{"a.b", "a b", "sess/1", "ключ", "x*", "", strings.Repeat("k", 129), "a.b "} {
		got := streams.ResultKey(k)
		if !strings.HasPrefix(got, "h-") || len(got) != 2+32 || !kvKey.MatchString(got) {
			t.Errorf("ResultKey(%q) = %q, want h-<32 hex>", k, got)
		}
		if got != streams.ResultKey(k) {
			t.Errorf("ResultKey(%q) not deterministic", k)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("ResultKey(%q) == ResultKey(%q)", k, prev)
		}
		seen[got] = k
	}
}
