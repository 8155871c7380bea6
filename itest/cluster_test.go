package itest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// clusterDeployment is a deployment over a natsCluster: streams and
// buckets provisioned with three replicas, one worker process serving the
// demo group and one gateway process, each given every node's URL.
type clusterDeployment struct {
	nats            *natsCluster
	endpoint        string
	gateway, worker *proc
}

// logErrors logs the error lines the gateway and the worker wrote.
func (d *clusterDeployment) logErrors(t *testing.T) {
	for _, p := range []*proc{d.gateway, d.worker} {
		p.mu.Lock()
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				t.Logf("%s: %s", p.name, l)
			}
		}
		p.mu.Unlock()
	}
}

// topologyFlags are the flags of every process of a clusterDeployment: two
// partitions keep the number of raft groups on two shared cores down.
var topologyFlags = []string{"--replicas", "3", "--partitions", "2"}

func startClusterDeployment(t *testing.T) *clusterDeployment {
	t.Helper()
	c := startNATSCluster(t)
	// A fresh cluster's meta leader can count a node offline for a moment
	// ("no suitable peers for placement"): provision tries again by itself.
	if p := start(t, "provision", append([]string{"provision", "--nats", c.URLs(), "--log-level", "warn"}, topologyFlags...)...); p.wait(2*time.Minute) != 0 {
		t.Fatalf("provision failed:\n%s", p.stderr.String())
	}
	// At info, the worker and the gateway log each new leader they
	// follow: a failing test's output shows when they did.
	w := start(t, "worker", append([]string{"worker", "--nats", c.URLs(), "--log-level", "info", "--concurrency", "16"}, topologyFlags...)...)
	w.waitLine(workerRE, time.Minute)
	gw := start(t, "gateway", append([]string{"gateway", "--nats", c.URLs(), "--addr", "127.0.0.1:0", "--log-level", "info"}, topologyFlags...)...)
	return &clusterDeployment{nats: c, endpoint: gw.waitLine(endpointRE, time.Minute)[1], gateway: gw, worker: w}
}

// checkNoHang fails the test for a call that waited until the client gave
// up, or failed with an error that does not say to try again, and returns
// the number of failed calls and the slowest call's time among the calls
// that overlap [from, to].
func checkNoHang(t *testing.T, results []callResult, from, to time.Time) (failed int, slowest time.Duration) {
	t.Helper()
	for _, r := range results {
		if r.end.Before(from) || r.start.After(to) {
			continue
		}
		if r.err != nil {
			failed++
			t.Logf("a call started %s after %s failed after %s: %v", r.start.Sub(from).Round(time.Millisecond),
				from.Format(time.StampMilli), r.end.Sub(r.start).Round(time.Millisecond), r.err)
			if errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("a call hung until the client gave up: %v", r.err)
			} else if !retryable(r.err) {
				t.Errorf("a call failed with an error that does not say to try again: %v", r.err)
			}
		}
		slowest = max(slowest, r.end.Sub(r.start))
	}
	return failed, slowest
}

// retryable reports whether a client would try the call that failed with
// err again: the gateway refused it with 503 (HTTP, with Retry-After), or
// answered the JSON-RPC overload error -32000.
func retryable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Service Unavailable") || strings.Contains(msg, "-32000")
}

// TestClusterRestartUnderLoad restarts every nats-server process of a
// three-node cluster under 16 closed-loop sessions of the official client:
// first one process at a time (SIGTERM, started again once it is down,
// the next one once the cluster is healthy again), then all three at once.
// The gateway and the worker reconnect without restarting, and no call
// waits for its deadline: each is answered, or refused at once with an
// explicit error.
func TestClusterRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster of nats-server processes")
	}
	d := startClusterDeployment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := startLoad(t, ctx, d.endpoint, 16, "sleep", map[string]any{"ms": 20})
	load.awaitCalls(t, 200)
	begin := time.Now()
	for _, n := range d.nats.nodes {
		d.nats.stop(n, syscall.SIGTERM)
		// While a node is down, the other two hold a quorum: calls go on.
		load.awaitStartedAfter(t, time.Now())
		d.nats.restart(n)
		d.nats.awaitHealthy()
		t.Logf("%s: down %s, healthy again %s after its start", n.name, n.startedAt.Sub(n.endAt).Round(time.Millisecond),
			time.Since(n.startedAt).Round(time.Millisecond))
		load.awaitCalls(t, load.count()+200)
	}
	rolled := time.Now()
	results := load.finish()
	failed, slowest := checkNoHang(t, results, begin, rolled)
	d.logErrors(t)
	t.Logf("one node at a time: %d calls, %d failed, the slowest took %s", len(results), failed, slowest.Round(time.Millisecond))

	load = startLoad(t, ctx, d.endpoint, 16, "sleep", map[string]any{"ms": 20})
	load.awaitCalls(t, 200)
	stopping := time.Now()
	d.nats.stopAll(syscall.SIGTERM)
	down := time.Now()
	for _, n := range d.nats.nodes {
		d.nats.restart(n)
	}
	d.nats.awaitHealthy()
	healthy := time.Now()
	load.awaitStartedAfter(t, healthy)
	load.awaitCalls(t, load.count()+500)
	results = load.finish()
	failed, slowest = checkNoHang(t, results, stopping, healthy)
	t.Logf("all at once: %d calls, %d failed; the nodes took %s to stop, the cluster was healthy %s after; the slowest call took %s",
		len(results), failed, down.Sub(stopping).Round(time.Millisecond), healthy.Sub(down).Round(time.Millisecond), slowest.Round(time.Millisecond))
	// A call made while the cluster stops or is down waits for it (its
	// publish is retried, the client's connection stays open): the outage
	// from the first signal, plus a reconnect, a publish again and a pull.
	if limit := healthy.Sub(stopping) + 5*time.Second; slowest > limit {
		t.Errorf("a call took %s, more than the outage and 5s: it waited for a deadline", slowest)
	}
}

// ledAssets returns the replicated streams, and consumers as
// "stream.consumer", that node leads.
func ledAssets(ctx context.Context, t *testing.T, js jetstream.JetStream, node string) []string {
	t.Helper()
	var led []string
	names := js.ListStreams(ctx)
	for info := range names.Info() {
		if info.Cluster != nil && info.Cluster.Leader == node {
			led = append(led, info.Config.Name)
		}
		s, err := js.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", info.Config.Name, err)
		}
		for ci := range s.ListConsumers(ctx).Info() {
			// A consumer of one replica (a watcher's) is not elected
			// again: it dies with its node.
			if ci.Cluster != nil && ci.Cluster.Leader == node && len(ci.Cluster.Replicas) > 0 {
				led = append(led, info.Config.Name+"."+ci.Name)
			}
		}
	}
	if err := names.Err(); err != nil {
		t.Fatalf("listing streams: %v", err)
	}
	return led
}

// elections subscribes, on a connection to node, to the leader-elected
// advisories of streams and consumers, and returns each asset's ("stream"
// or "stream.consumer") first election time as the server stamped it.
func elections(t *testing.T, n *natsNode) (<-chan election, func()) {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", n.client))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan election, 64)
	_, err = nc.Subscribe("$JS.EVENT.ADVISORY.*.LEADER_ELECTED.>", func(m *nats.Msg) {
		var a struct {
			Time     time.Time `json:"timestamp"`
			Stream   string    `json:"stream"`
			Consumer string    `json:"consumer"`
			Leader   string    `json:"leader"`
		}
		if json.Unmarshal(m.Data, &a) != nil {
			return
		}
		asset := a.Stream
		if a.Consumer != "" {
			asset += "." + a.Consumer
		}
		select {
		case ch <- election{asset: asset, leader: a.Leader, at: a.Time}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch, nc.Close
}

// election is a leader-elected advisory.
type election struct {
	asset, leader string
	at            time.Time
}

// TestNodeDeathCostsAnElection kills with SIGKILL the nats-server process
// leading request partition 0 of a three-node cluster, under 16
// closed-loop sessions, and starts it again; MCPSTREAM_NODE_DEATH_RUNS
// times (default 2). Each run measures how long the cluster takes to elect
// new leaders for what the dead node led (the election nats-server's raft
// holds 4-9 s after a hard kill), then any election after those until the
// run ends (an asset elected again holds calls back as the first one did),
// and the slowest call of the run: no call fails, and the slowest exceeds
// the last election by at most a second.
func TestNodeDeathCostsAnElection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster of nats-server processes")
	}
	runs := 2
	if v := os.Getenv("MCPSTREAM_NODE_DEATH_RUNS"); v != "" {
		var err error
		if runs, err = strconv.Atoi(v); err != nil || runs < 1 {
			t.Fatalf("MCPSTREAM_NODE_DEATH_RUNS=%q: want a positive number", v)
		}
	}
	d := startClusterDeployment(t)
	nc, js := d.nats.admin()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*2*time.Minute)
	defer cancel()
	load := startLoad(t, ctx, d.endpoint, 16, "sleep", map[string]any{"ms": 20})
	var report []string
	for run := 1; run <= runs; run++ {
		load.awaitCalls(t, load.count()+300)
		stream := streams.StreamName(0)
		victim := streamLeader(ctx, nc, stream)
		if victim == "" {
			t.Fatalf("run %d: %s has no leader", run, stream)
		}
		led := ledAssets(ctx, t, js, victim)
		n := d.nats.node(victim)
		var witness *natsNode
		for _, o := range d.nats.nodes {
			if o != n {
				witness = o
				break
			}
		}
		advisories, closeWitness := elections(t, witness)
		killed := time.Now()
		d.nats.stop(n, syscall.SIGKILL)
		// Wait for a new leader of every asset the victim led. Any other
		// election until the run ends (an asset elected again, one the
		// victim did not lead) holds calls back too: later keeps them.
		elected := map[string]time.Duration{}
		var later []election
		heard := func(e election) {
			switch _, ok := elected[e.asset]; {
			case e.leader == victim || !e.at.After(killed):
			case !ok && slices.Contains(led, e.asset):
				elected[e.asset] = e.at.Sub(killed)
			default:
				later = append(later, e)
			}
		}
		giveUp := time.After(time.Minute)
		for len(elected) < len(led) {
			select {
			case e := <-advisories:
				heard(e)
			case <-giveUp:
				t.Fatalf("run %d: in a minute, new leaders of only %v of %v", run, elected, led)
			}
		}
		first := slices.Max(slices.Collect(maps.Values(elected)))
		load.awaitStartedAfter(t, killed.Add(first))
		load.awaitCalls(t, load.count()+300)
		end := time.Now()
		closeWitness()
	drain:
		for {
			select {
			case e := <-advisories:
				if e.at.Before(end) {
					heard(e)
				}
			default:
				break drain
			}
		}
		last := first
		for _, e := range later {
			last = max(last, e.at.Sub(killed))
		}
		results := load.snapshot()
		failed, slowest := checkNoHang(t, results, killed, end)
		line := fmt.Sprintf("run %d: killed %s leading %d assets; %s elected in %s, the last of them in %s, %d elections after those, the last election in %s; slowest call %s (%+.0f ms over the last election), %d failed",
			run, victim, len(led), stream, elected[stream].Round(time.Millisecond), first.Round(time.Millisecond), len(later),
			last.Round(time.Millisecond), slowest.Round(time.Millisecond), float64((slowest - last).Milliseconds()), failed)
		t.Log(line)
		report = append(report, line)
		if failed > 0 {
			t.Errorf("run %d: %d calls failed", run, failed)
		}
		if slowest > last+time.Second {
			t.Errorf("run %d: the slowest call took %s, more than the last election (%s) and a second", run, slowest, last)
			for _, asset := range slices.Sorted(maps.Keys(elected)) {
				t.Logf("run %d: %s elected %s after the kill", run, asset, elected[asset].Round(time.Millisecond))
			}
			for _, e := range later {
				t.Logf("run %d: then %s elected %s after the kill (%s)", run, e.asset, e.at.Sub(killed).Round(time.Millisecond), e.leader)
			}
			for _, r := range results { // when they ran, for whoever reads the failure
				if took := r.end.Sub(r.start); took > last+time.Second && r.end.After(killed) {
					t.Logf("run %d: a call started %s after the kill took %s", run, r.start.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond))
				}
			}
		}
		d.nats.restart(n)
		d.nats.awaitHealthy()
	}
	load.finish()
	for _, l := range report {
		t.Log(l)
	}
}

// Provisioning three replicas on a cluster whose nodes have just started,
// before any is healthy: while it elects its meta leader and hears from
// every node the cluster does not answer, answers that it is unavailable,
// or refuses placement (no suitable peers), and provision tries again
// until it succeeds, with the streams on three peers. A placement the
// cluster cannot make (five replicas on three nodes) is the error
// provision tries again on.
func TestProvisionOnNewCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster of nats-server processes")
	}
	c := newNATSCluster(t)
	c.startAll()
	p := start(t, "provision", append([]string{"provision", "--nats", c.URLs(), "--log-level", "warn"}, topologyFlags...)...)
	if code := p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("provision exited %d", code)
	}
	c.awaitHealthy()
	nc, js := c.admin()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streams.StreamName(0))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("%s: %d replicas, want 3", streams.StreamName(0), r)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "FIVE", Subjects: []string{"five.>"}, Replicas: 5})
	if !streams.IsNoPeers(err) {
		t.Errorf("five replicas on three nodes: %v, want IsNoPeers", err)
	}
}
