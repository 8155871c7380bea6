package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// natsServerBinary builds the nats-server command of the module's own
// nats-server dependency once for the suite, so that cluster tests run
// nats-server processes that can be killed with SIGKILL, as in production.
var natsServerBinary = sync.OnceValues(func() (string, error) {
	path := filepath.Join(filepath.Dir(binary), "nats-server")
	build := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nats-server: %w\n%s", err, out)
	}
	return path, nil
})

// natsNode is one nats-server process of a natsCluster: its config file,
// store and ports stay across restarts.
type natsNode struct {
	name             string
	conf             string
	client, monitor  int
	cmd              *exec.Cmd
	done             chan struct{}
	stderr           *testkit.Buffer
	startedAt, endAt time.Time
}

// natsCluster is a three-node JetStream cluster of nats-server processes
// over loopback TCP.
type natsCluster struct {
	t     *testing.T
	nodes []*natsNode
}

// freePorts returns n ports free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startNATSCluster starts three nats-server processes, each with
// JetStream on disk in its own directory, routed to each other, and waits
// until every node reports JetStream healthy. The processes are killed at
// cleanup.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := newNATSCluster(t)
	c.startAll()
	c.awaitHealthy()
	return c
}

// startAll starts every node, without waiting for them.
func (c *natsCluster) startAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		c.restart(n)
	}
}

// newNATSCluster configures a cluster of three nodes and starts none.
func newNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	ports := freePorts(t, 9)
	routes := make([]string, 3)
	for i := range routes {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[6+i])
	}
	c := &natsCluster{t: t}
	for i := range 3 {
		dir := t.TempDir()
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), conf: filepath.Join(dir, "nats.conf"), client: ports[i], monitor: ports[3+i]}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: itest
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.client, n.monitor, filepath.Join(dir, "js"), ports[6+i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.kill(n)
		}
	})
	return c
}

// URLs is the cluster's client URLs, comma-separated, as --nats takes them.
func (c *natsCluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.client)
	}
	return strings.Join(urls, ",")
}

// node returns the node named name.
func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

func (c *natsCluster) start(n *natsNode, bin string) {
	c.t.Helper()
	n.cmd = exec.Command(bin, "-c", n.conf)
	n.stderr = &testkit.Buffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", n.name, err)
	}
	n.startedAt, n.done = time.Now(), make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(n.cmd, n.done)
}

// restart starts the node, or starts the stopped node again on its ports
// and store.
func (c *natsCluster) restart(n *natsNode) {
	c.t.Helper()
	bin, err := natsServerBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	c.start(n, bin)
}

// stop ends the node with sig (SIGTERM: a clean shutdown; SIGKILL: a
// crash) and waits for its process to exit.
func (c *natsCluster) stop(n *natsNode, sig syscall.Signal) {
	c.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signalling %s: %v", n.name, err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not exit within 30s of %s", n.name, sig)
	}
	n.endAt = time.Now()
}

// stopAll ends every node at once with sig and waits for their
// processes to exit.
func (c *natsCluster) stopAll(sig syscall.Signal) {
	c.t.Helper()
	for _, n := range c.nodes {
		if err := n.cmd.Process.Signal(sig); err != nil {
			c.t.Fatalf("signalling %s: %v", n.name, err)
		}
	}
	for _, n := range c.nodes {
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			c.t.Fatalf("%s did not exit within 30s of %s", n.name, sig)
		}
		n.endAt = time.Now()
	}
}

func (c *natsCluster) kill(n *natsNode) {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
	default:
		_ = n.cmd.Process.Kill()
		<-n.done
		if c.t.Failed() {
			c.t.Logf("%s output (tail):\n%s", n.name, tail(n.stderr.String(), 3000))
		}
	}
}

// healthy reports whether the node's monitoring endpoint says JetStream is
// healthy on it: its streams and consumers current with their leaders.
func (n *natsNode) healthy() bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// awaitHealthy waits until every node reports healthy.
func (c *natsCluster) awaitHealthy() {
	c.t.Helper()
	testkit.Eventually(c.t, "every NATS node healthy", 90*time.Second, func() bool {
		for _, n := range c.nodes {
			if !n.healthy() {
				return false
			}
		}
		return true
	})
}

// admin connects to the cluster for the test's own JetStream requests.
func (c *natsCluster) admin() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// streamLeader returns the name of the node leading stream, or "" while
// there is none (or the request fails).
func streamLeader(ctx context.Context, nc *nats.Conn, stream string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO."+stream, nil)
	if err != nil {
		return ""
	}
	var info struct {
		Cluster *jetstream.ClusterInfo `json:"cluster"`
	}
	if json.Unmarshal(m.Data, &info) != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}
