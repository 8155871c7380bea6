package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

// startCluster runs a real three-node NATS cluster over loopback TCP, each
// node with JetStream on disk in its own temp dir, and waits until the
// JetStream meta leader sees every node online. The nodes are shut down at
// cleanup.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	srvs := make([]*server.Server, len(ports))
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "itest", Host: "127.0.0.1", Port: p},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		srvs[i] = s
		t.Cleanup(s.Shutdown)
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %s not ready", s.Name())
		}
	}
	testkit.Eventually(t, "a JetStream meta leader that sees every node online", 30*time.Second, func() bool {
		for _, s := range srvs {
			if s.JetStreamIsLeader() {
				return len(s.JetStreamClusterPeers()) == len(srvs)
			}
		}
		return false
	})
	return srvs
}

// moveLeader makes node lead the JetStream asset (kind STREAM or CONSUMER,
// name "stream" or "stream.consumer"). A stepdown can elect another node
// than the preferred one (one whose log is behind is passed over), so it
// asks again until node leads.
func moveLeader(t *testing.T, nc *nats.Conn, node, kind, name string) {
	t.Helper()
	req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, node)
	info := "$JS.API." + kind + ".INFO." + name
	for attempt := 1; leaderOf(t, nc, info) != node; attempt++ {
		if attempt > 10 {
			t.Fatalf("%s %s: the leader did not move to %s in 10 stepdowns", kind, name, node)
		}
		m, err := nc.Request("$JS.API."+kind+".LEADER.STEPDOWN."+name, []byte(req), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s: leader stepdown %d: %s", kind, name, attempt, m.Data)
	}
}

// leaderOf waits for the JetStream API subject's asset (a stream, or a
// consumer of one) to have a leader and returns its server's name.
func leaderOf(t *testing.T, nc *nats.Conn, infoSubject string) string {
	t.Helper()
	var leader string
	testkit.Eventually(t, "a leader from "+infoSubject, 30*time.Second, func() bool {
		m, err := nc.Request(infoSubject, nil, 2*time.Second)
		if err != nil {
			return false
		}
		var info struct {
			Cluster *jetstream.ClusterInfo `json:"cluster"`
		}
		if json.Unmarshal(m.Data, &info) != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader
}

// TestConsumerLeaderFailover shuts down the node that leads a request stream
// and the worker group's consumer on it while closed-loop clients call a tool
// through a gateway on another node. Every call must still be answered, and
// soon. The gateway publishes again a request that no acknowledgement
// answered (the leader died with it), and the worker's pulls are
// heartbeated, so it notices that the leader that held them is gone and
// pulls again from the new one instead of waiting out a long pull. The node
// leads the result bucket too: a result whose write it swallowed is stored
// again before the request is acknowledged, so the redelivery that follows
// finds it and a tool that is not idempotent does not run twice.
func TestConsumerLeaderFailover(t *testing.T) {
	testFailover(t, false)
}

// TestGatewayNodeFailover shuts down the node the gateway is connected to
// (the worker and the stream's leader are on the others). Replies sent
// while the gateway reconnects to another node are lost; the calls that
// were waiting then find their result in the result bucket or, for an
// idempotent tool like echo, run again, so no call is lost.
func TestGatewayNodeFailover(t *testing.T) {
	testFailover(t, true)
}

// testFailover runs closed-loop calls through a gateway and a worker on a
// three-node cluster and shuts one node down among them: the leader of the
// request stream and its consumer, or else the gateway's node.
func testFailover(t *testing.T, gatewayNode bool) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	srvs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo := streams.Topology{Partitions: 1, Replicas: 3, AckWait: 5 * time.Second}

	admin, err := nats.Connect(srvs[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh cluster's meta leader can still count a node offline for a
	// moment ("no suitable peers for placement"): try again, with backoff.
	for attempt, backoff := 1, 100*time.Millisecond; ; attempt, backoff = attempt+1, 2*backoff {
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		err := streams.Provision(pctx, js, topo)
		if err == nil {
			_, err = streams.EnsureGroup(pctx, js, topo, "demo")
		}
		pcancel()
		if err == nil {
			break
		}
		t.Logf("provisioning, attempt %d: %v", attempt, err)
		if attempt == 8 {
			t.Fatal(err)
		}
		time.Sleep(backoff)
	}
	// The victim leads both the request stream and the group's consumer:
	// its death loses the publishes it had not yet acknowledged and the
	// pull requests it held. Ask the consumer's leader to hand over to
	// the stream's leader if they differ.
	stream, consumer := streams.StreamName(0), streams.ConsumerName("demo")
	leader := leaderOf(t, admin, "$JS.API.STREAM.INFO."+stream)
	moveLeader(t, admin, leader, "CONSUMER", stream+"."+consumer)
	// It leads the result bucket too: the results being stored when it
	// dies are lost, and must be stored again before the requests are
	// acknowledged, or their redeliveries would run again.
	moveLeader(t, admin, leader, "STREAM", "KV_"+streams.ResultBucket)
	// Until the moved leaders have settled, an API request can go
	// unanswered: wait until every stream answers its info request.
	for _, name := range []string{stream, streams.EventsStream, streams.DLQStream, "KV_" + streams.ResultBucket,
		"KV_" + streams.RegistryBucket, "KV_" + streams.SessionBucket, "KV_" + streams.TaskBucket} {
		leaderOf(t, admin, "$JS.API.STREAM.INFO."+name)
	}
	var victim, home, other *server.Server
	for _, s := range srvs {
		switch {
		case s.Name() == leader:
			victim = s
		case home == nil:
			home = s
		default:
			other = s
		}
	}
	gwNode, workerNode := home, home
	if gatewayNode {
		victim, workerNode = home, other
	}
	t.Logf("stream and consumer leader %s; gateway on %s, worker on %s; %s goes down", leader, gwNode.Name(), workerNode.Name(), victim.Name())

	connect := func(node *server.Server) *nats.Conn {
		nc, err := nats.Connect(node.ClientURL(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	// Half the sessions call echo (read-only: a call whose reply is lost
	// may run again), half a tool that is not idempotent, whose result the
	// worker stores; it counts its runs of each text.
	var runs sync.Map // text -> *atomic.Int32
	ledger := workers.NewGroup("ledger")
	workers.AddTool(ledger, workers.Tool{Name: "append", Description: "Appends text to a ledger."},
		func(_ context.Context, _ *workers.Call, in examples.EchoIn) (*schema.ToolResult, error) {
			n, _ := runs.LoadOrStore(in.Text, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			return workers.TextResult(in.Text), nil
		})
	// No deadline: each JetStream API request then has nats.go's own
	// timeout (5s), so one lost to an election fails fast.
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 2)
	wnc := connect(workerNode)
	for _, g := range []*workers.Group{examples.Demo(), ledger} {
		// A group that fails to start is started again, as its process's
		// supervisor would.
		for attempt := 1; ; attempt++ {
			ready := make(chan struct{})
			go func() {
				ran <- g.Run(runCtx, wnc, workers.Options{Ready: ready, Heartbeat: time.Second, Logger: quietLog, Topology: topo})
			}()
			select {
			case <-ready:
			case err := <-ran:
				if attempt == 3 {
					t.Fatalf("worker group: %v", err)
				}
				t.Logf("worker group, start %d: %v", attempt, err)
				continue
			}
			break
		}
	}
	gw, err := gateway.New(runCtx, connect(gwNode), gateway.Config{Topology: topo, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer func() {
		gw.Drain()
		srv.Close()
		gw.Close()
		stop()
		for range 2 {
			if err := <-ran; err != nil {
				t.Errorf("worker group: %v", err)
			}
		}
	}()
	testkit.Eventually(t, "echo and append in the registry snapshot", 10*time.Second, func() bool {
		return gw.Registry().Tool("echo") != nil && gw.Registry().Tool("append") != nil
	})

	const sessions = 16
	var (
		calls    atomic.Int64 // answered calls
		killedAt atomic.Int64 // unix nanos the victim went down, 0 before
		mu       sync.Mutex
		failures []string
		slowest  time.Duration   // of the calls sent after killedAt - 10s
		after    [sessions]int   // calls sent after the victim went down, answered
		reached  int             // sessions with 20 of those
		lat      []time.Duration // of the calls sent after the victim went down
	)
	enough := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range sessions {
		sid := initSession(t, srv.URL)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				tool := []string{"echo", "append"}[i%2]
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"text":"s%d-%d"}}}`, n, tool, i, n)
				want := fmt.Sprintf(`"text":"s%d-%d"`, i, n)
				start := time.Now()
				err := callOnce(ctx, srv.URL, sid, body, want)
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("session %d call %d after %v: %v", i, n, took, err))
					mu.Unlock()
					return
				}
				if k := killedAt.Load(); k != 0 && start.UnixNano() > k-int64(10*time.Second) {
					slowest = max(slowest, took)
					if start.UnixNano() > k {
						lat = append(lat, took)
						if after[i]++; after[i] == 20 {
							if reached++; reached == sessions {
								close(enough)
							}
						}
					}
				}
				mu.Unlock()
				if calls.Add(1) == 500 {
					// Shut the leader down while calls are in flight.
					killedAt.Store(time.Now().UnixNano())
					victim.Shutdown()
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
	}
	close(done)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	if killedAt.Load() == 0 {
		t.Fatalf("only %d calls answered before the failover", calls.Load())
	}
	if slices.Sort(lat); len(lat) > 0 {
		t.Logf("calls sent after the leader went down: %d, p50 %v, p99 %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100])
	}
	t.Logf("%d calls answered; after the leader went down, per session: %v; slowest call around it %v", calls.Load(), after, slowest)
	for i, a := range after {
		if a < 20 {
			t.Errorf("session %d: %d calls answered in the 60s after the leader went down, want 20", i, a)
		}
	}
	runs.Range(func(text, n any) bool {
		if n := n.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("append ran %d times for %s", n, text)
		}
		return true
	})
	// Electing a new leader takes a few seconds; a call the old leader had
	// delivered but nobody acked waits at most AckWait for redelivery.
	if limit := 15 * time.Second; slowest > limit {
		t.Errorf("slowest call around the failover took %v, want <= %v", slowest, limit)
	}
}

// callOnce sends one tools/call and checks that its result carries want.
func callOnce(ctx context.Context, url, sid, body, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(want)) || bytes.Contains(b, []byte(`"isError":true`)) {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	return nil
}
