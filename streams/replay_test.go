package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// recordRequests provisions 4 partitions and publishes n requests as a
// gateway would: session s<i%sessions> (routed by session), group g<i%2>,
// key k<i>, tool t<i%3>. It returns the keys in the order published.
func recordRequests(t *testing.T, js jetstream.JetStream, n, sessions int) []string {
	t.Helper()
	ctx := context.Background()
	topo := streams.Topology{Partitions: 4}
	if err := streams.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g0", "g1"} { // durable consumers, to check they are left alone
		if _, err := streams.EnsureGroup(ctx, js, topo, g); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for i := range n {
		sess := fmt.Sprintf("s%d", i%sessions)
		env := schema.Envelope{Key: fmt.Sprintf("k%d", i), Method: schema.MethodToolsCall, Name: fmt.Sprintf("t%d", i%3),
			Session: sess, ReplyTo: "mcp.reply.gw", Deadline: time.Now().Add(time.Minute).UnixNano(), Attempt: 1}
		b, _ := env.Marshal()
		subject := streams.RequestSubject(fmt.Sprintf("g%d", i%2), streams.Partition(sess, 4))
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: b}, jetstream.WithMsgID(env.Key)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, env.Key)
	}
	return keys
}

// replayKeys runs a replay with o and returns the keys it passed on.
func replayKeys(t *testing.T, ctx context.Context, js jetstream.JetStream, o streams.ReplayOptions) []string {
	t.Helper()
	var keys []string
	err := streams.Replay(ctx, js, o, func(r *streams.Recorded) error {
		if r.Err != nil {
			return r.Err
		}
		keys = append(keys, r.Envelope.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestReplayMergesPartitionsInOrder: every request of every partition
// stream, once each, merged in the order stored (here the order
// published, one at a time), and the durable consumers untouched.
func TestReplayMergesPartitionsInOrder(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx := context.Background()
	want := recordRequests(t, js, 200, 7)
	_, before := consumers(t, js)
	got := replayKeys(t, ctx, js, streams.ReplayOptions{})
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d requests, want %d in publish order; first %v", len(got), len(want), got[:min(5, len(got))])
	}
	names, after := consumers(t, js)
	if !slices.Equal(before, after) {
		t.Errorf("durable consumers changed: %v -> %v", before, after)
	}
	if len(names) != 8 { // 2 groups x 4 partitions; the replay's ordered consumers are gone
		t.Errorf("consumers after the replay: %v", names)
	}
}

// TestReplayFilters: group (the server's filter), session (one stream),
// stream, Match, Limit, start sequence and time range each select exactly
// the matching requests, in order.
func TestReplayFilters(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx := context.Background()
	all := recordRequests(t, js, 120, 5)
	pick := func(keep func(i int) bool) []string {
		var out []string
		for i, k := range all {
			if keep(i) {
				out = append(out, k)
			}
		}
		return out
	}
	check := func(name string, o streams.ReplayOptions, want []string) {
		t.Helper()
		if got := replayKeys(t, ctx, js, o); !slices.Equal(got, want) {
			t.Errorf("%s: got %d %v, want %d %v", name, len(got), head(got), len(want), head(want))
		}
	}
	check("group", streams.ReplayOptions{Group: "g1"}, pick(func(i int) bool { return i%2 == 1 }))
	check("session", streams.ReplayOptions{Session: "s3"}, pick(func(i int) bool { return i%5 == 3 }))
	check("session and group", streams.ReplayOptions{Session: "s3", Group: "g0"}, pick(func(i int) bool { return i%5 == 3 && i%2 == 0 }))
	check("match", streams.ReplayOptions{Match: func(r *streams.Recorded) bool { return r.Envelope.Name == "t2" }},
		pick(func(i int) bool { return i%3 == 2 }))
	check("limit", streams.ReplayOptions{Limit: 10}, all[:10])
	check("limit after match", streams.ReplayOptions{Limit: 3, Group: "g1"}, []string{all[1], all[3], all[5]})
	check("unknown session", streams.ReplayOptions{Session: "nobody"}, nil)

	p := streams.Partition("s1", 4)
	stream := streams.StreamName(p)
	inStream := pick(func(i int) bool { return streams.Partition(fmt.Sprintf("s%d", i%5), 4) == p })
	check("stream", streams.ReplayOptions{Stream: stream}, inStream)
	check("start seq", streams.ReplayOptions{Stream: stream, StartSeq: 3}, inStream[2:])

	// A time range: the requests stored between two recorded times.
	var times []time.Time
	err := streams.Replay(ctx, js, streams.ReplayOptions{}, func(r *streams.Recorded) error {
		times = append(times, r.Time)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	from, to := 30, 80 // publishes one at a time: their times differ
	check("since and until", streams.ReplayOptions{Since: times[from], Until: times[to]}, all[from:to+1])

	if err := streams.Replay(ctx, js, streams.ReplayOptions{Stream: "MCP_REQ_9"}, func(*streams.Recorded) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "MCP_REQ_9") {
		t.Errorf("unknown stream: %v", err)
	}
}

// TestReplayFollow: after the range, a request stored later is passed on,
// marked live; the replay ends when its context does.
func TestReplayFollow(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	all := recordRequests(t, js, 10, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *streams.Recorded, 20)
	done := make(chan error, 1)
	go func() {
		done <- streams.Replay(ctx, js, streams.ReplayOptions{Follow: true}, func(r *streams.Recorded) error {
			got <- r
			return nil
		})
	}()
	for i := range all {
		select {
		case r := <-got:
			if r.Envelope.Key != all[i] || r.Live {
				t.Fatalf("range request %d: %s live %v, want %s", i, r.Envelope.Key, r.Live, all[i])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("range request %d not replayed", i)
		}
	}
	env := schema.Envelope{Key: "later", Method: schema.MethodToolsCall, Name: "t0", Session: "s9", ReplyTo: "mcp.reply.gw"}
	b, _ := env.Marshal()
	if _, err := js.Publish(ctx, streams.RequestSubject("g0", streams.Partition("s9", 4)), b); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.Envelope.Key != "later" || !r.Live {
			t.Fatalf("followed %s live %v", r.Envelope.Key, r.Live)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request stored after the range was not followed")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("follow ended with %v", err)
	}
}

// TestReplayNothingProvisioned: a clear error, not a hang.
func TestReplayNothingProvisioned(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	err := streams.Replay(context.Background(), js, streams.ReplayOptions{}, func(*streams.Recorded) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "provision") {
		t.Errorf("replay of nothing: %v", err)
	}
}

func head(s []string) []string { return s[:min(4, len(s))] }

// consumers lists the consumers of the request streams: every name, and
// every durable consumer's delivered and acknowledged counts.
func consumers(t *testing.T, js jetstream.JetStream) (names, durable []string) {
	t.Helper()
	for p := range 4 {
		s, err := js.Stream(context.Background(), streams.StreamName(p))
		if err != nil {
			t.Fatal(err)
		}
		for c := range s.ListConsumers(context.Background()).Info() {
			names = append(names, c.Name)
			if c.Config.Durable != "" {
				durable = append(durable, fmt.Sprintf("%s/%s delivered %d/%d acked %d/%d", c.Stream, c.Name,
					c.Delivered.Consumer, c.Delivered.Stream, c.AckFloor.Consumer, c.AckFloor.Stream))
			}
		}
	}
	slices.Sort(durable)
	return names, durable
}

// BenchmarkReplay reads a range of b.N requests over 4 partitions: the
// cost of reading one request back (the server is in the same process).
// The memory of a replay process over ranges of different sizes is
// measured in itest's BenchmarkReplayRSS.
func BenchmarkReplay(b *testing.B) {
	_, _, js := testkit.JetStream(b)
	ctx := context.Background()
	if err := streams.Provision(ctx, js, streams.Topology{Partitions: 4}); err != nil {
		b.Fatal(err)
	}
	args, _ := schema.JSONToMsgpack(nil, []byte(`{"text":"`+strings.Repeat("x", 200)+`"}`))
	for i := range b.N {
		env := schema.Envelope{Key: fmt.Sprintf("k%d", i), Method: schema.MethodToolsCall, Name: "echo", Params: args,
			Session: fmt.Sprintf("s%d", i%64), ReplyTo: "mcp.reply.gw"}
		data, _ := env.Marshal()
		if _, err := js.PublishAsync(streams.RequestSubject("g", streams.Partition(env.Session, 4)), data); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	n := 0
	b.ResetTimer()
	err := streams.Replay(ctx, js, streams.ReplayOptions{}, func(*streams.Recorded) error {
		n++
		return nil
	})
	b.StopTimer()
	if err != nil || n != b.N {
		b.Fatalf("replayed %d of %d: %v", n, b.N, err)
	}
}

// TestReplayFollowUntil: a follow with Until ends there, even when
// nothing more is stored; a session and a stream that disagree are an
// error, not an empty follow.
func TestReplayFollowUntil(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	recordRequests(t, js, 4, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	err := streams.Replay(ctx, js, streams.ReplayOptions{Follow: true, Until: time.Now().Add(200 * time.Millisecond)},
		func(*streams.Recorded) error { n++; return nil })
	if err != nil || n != 4 {
		t.Errorf("follow until: %d requests, %v", n, err)
	}
	other := streams.StreamName((streams.Partition("s1", 4) + 1) % 4)
	err = streams.Replay(ctx, js, streams.ReplayOptions{Follow: true, Session: "s1", Stream: other}, func(*streams.Recorded) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Errorf("session in another stream: %v", err)
	}
}

// TestReplayStartSeqSince: with a start sequence and Since both set, a
// stream whose requests from the start sequence on are all older than
// Since still ends its range: the replay returns at once, with none of
// them (or only the newer ones), instead of waiting for the context.
func TestReplayStartSeqSince(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	all := recordRequests(t, js, 40, 5)
	var last time.Time
	streamsWith := map[string]bool{}
	err := streams.Replay(context.Background(), js, streams.ReplayOptions{}, func(r *streams.Recorded) error {
		last = r.Time
		streamsWith[r.Stream] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(streamsWith) < 2 {
		t.Fatalf("the requests are in %d streams; the test needs one whose requests are all older than Since", len(streamsWith))
	}
	check := func(name string, since time.Time, want []string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		begin := time.Now()
		var got []string
		err := streams.Replay(ctx, js, streams.ReplayOptions{StartSeq: 1, Since: since}, func(r *streams.Recorded) error {
			got = append(got, r.Envelope.Key)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: replay ended after %v with %v (%d requests)", name, time.Since(begin).Round(time.Millisecond), err, len(got))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	check("all older", last.Add(time.Hour), nil)
	check("only the last newer", last, all[len(all)-1:])
}

// TestReplayBoundsBytesRead: a replay holds at most a bounded number of
// bytes, whatever the requests' sizes (they may each be as large as the
// stream's MaxMsgSize, 8 MiB by default): every pull request its readers
// send names a byte limit, none larger than one request of the largest
// size the stream takes and 64 KiB (more than a 4-stream share of the
// 16 MiB budget), and each stream's first pull takes at least such a
// request, so that none is stuck behind the limit. A request near that
// size is replayed.
func TestReplayBoundsBytesRead(t *testing.T) {
	_, nc, js := testkit.JetStream(t)
	recordRequests(t, js, 8, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	params, err := schema.JSONToMsgpack(nil, []byte(`{"text":"`+strings.Repeat("x", 7<<20)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	big := schema.Envelope{Key: "big", Method: schema.MethodToolsCall, Name: "t0", Session: "s0", ReplyTo: "mcp.reply.gw",
		Params: params, Attempt: 1}
	data, _ := big.Marshal()
	if _, err := js.Publish(ctx, streams.RequestSubject("g0", streams.Partition("s0", 4)), data); err != nil {
		t.Fatal(err)
	}
	pulls, err := nc.SubscribeSync("$JS.API.CONSUMER.MSG.NEXT.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	keys := replayKeys(t, ctx, js, streams.ReplayOptions{})
	if len(keys) != 9 || !slices.Contains(keys, "big") {
		t.Fatalf("replayed %d requests (%v), want 9 with big", len(keys), keys)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const bound = 8<<20 + 64<<10
	first := map[string]int{} // a consumer's first pull's byte limit
	for {
		m, err := pulls.NextMsg(0)
		if err != nil {
			break
		}
		var req struct {
			Batch    int `json:"batch"`
			MaxBytes int `json:"max_bytes"`
		}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Fatalf("pull request %q: %v", m.Data, err)
		}
		if _, ok := first[m.Subject]; !ok {
			first[m.Subject] = req.MaxBytes
		}
		if req.MaxBytes <= 0 || req.MaxBytes > bound {
			t.Errorf("%s: pull of %d requests with a byte limit of %d, want at most %d", m.Subject, req.Batch, req.MaxBytes, bound)
		}
	}
	if len(first) < 4 {
		t.Errorf("pulls seen of %d consumers, want one per stream (4): %v", len(first), first)
	}
	for subject, n := range first {
		if n <= 8<<20 {
			t.Errorf("%s: first pull's byte limit %d, want more than 8 MiB (a request as large as the stream takes)", subject, n)
		}
	}
}
