package itest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/gateway"
	"go.uber.org/goleak"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
	"github.com/mcpstream/mcpstream/workers/examples"
)

// binary is the mcpstream command built once for the suite (with the race
// detector when the tests have it, so races in subprocesses fail them too).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcpstream-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mcpstream")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/mcpstream/mcpstream/cmd/mcpstream")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mcpstream:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// Every goroutine the tests started has ended (docs/testing.md).
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	upstreamServer.Remove()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running mcpstream subprocess.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	lines  []string
	notify chan struct{} // closed and replaced on every new stdout line
	stderr bytes.Buffer
}

// start runs mcpstream with args; the process is killed at the end of the
// test if still running, and its stderr is logged if the test failed.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, name, nil, args...)
}

// startEnv is start with env (NAME=value entries) added to the test's
// environment.
func startEnv(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, binary, env, args...)
}

// startProgram is start for another program than mcpstream.
func startProgram(t testing.TB, name, path string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, path, nil, args...)
}

// startCmd runs the program at path with args, env added to the test's
// environment (see start).
func startCmd(t testing.TB, name, path string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{}), notify: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.notify)
			p.notify = make(chan struct{})
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stdout:\n%s\n%s stderr (tail):\n%s", name, strings.Join(p.lines, "\n"), name, tail(p.stderr.String(), 12000))
			p.mu.Unlock()
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitLine waits for a stdout line matching re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		lines, notify := p.lines, p.notify
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if m := re.FindStringSubmatch(lines[seen]); m != nil {
				return m
			}
		}
		select {
		case <-notify:
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q", p.name, re)
		case <-deadline.C:
			p.t.Fatalf("%s did not print %q within %s", p.name, re, timeout)
		}
	}
}

// signal sends sig and waits for the process to exit; it returns the exit code.
func (p *proc) signal(sig os.Signal, timeout time.Duration) int {
	p.t.Helper()
	p.send(sig)
	return p.wait(timeout)
}

// send sends sig to the process.
func (p *proc) send(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop interrupts the process and requires a clean exit (status 0).
func (p *proc) stop() {
	p.t.Helper()
	if code := p.signal(syscall.SIGINT, 45*time.Second); code != 0 {
		p.t.Errorf("%s exited with status %d after SIGINT, want 0", p.name, code)
	}
}

var (
	endpointRE = regexp.MustCompile(`MCP endpoint (http://\S+/mcp)`)
	natsRE     = regexp.MustCompile(`NATS listening on (nats://\S+)`)
	workerRE   = regexp.MustCompile(`worker group (\S+) serving`)
)

// startDev runs `mcpstream dev` on a free port and returns it with its MCP
// endpoint URL and, when exposeNATS, its NATS URL.
func startDev(t testing.TB, exposeNATS bool, extra ...string) (p *proc, endpoint, natsURL string) {
	t.Helper()
	return startDevEnv(t, nil, exposeNATS, extra...)
}

// startDevEnv is startDev with env added to the test's environment.
func startDevEnv(t testing.TB, env []string, exposeNATS bool, extra ...string) (p *proc, endpoint, natsURL string) {
	t.Helper()
	args := []string{"dev", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"}
	if exposeNATS {
		args = append(args, "--nats-listen", "127.0.0.1:0")
	}
	p = startEnv(t, "dev", env, append(args, extra...)...)
	if exposeNATS {
		natsURL = p.waitLine(natsRE, 30*time.Second)[1]
	}
	endpoint = p.waitLine(endpointRE, 60*time.Second)[1]
	return p, endpoint, natsURL
}

// stack is an in-process deployment on real parts: an embedded nats-server
// with JetStream on disk, the demo worker group, a gateway, and real HTTP on
// loopback. Its code runs under the test's race detector. The demo group
// registers its metrics on the gateway's Config.Metrics, traces with its
// Config.TracerProvider and provisions its Config.Topology.
type stack struct {
	emb *streams.Embedded
	gw  *gateway.Gateway
	url string
	cfg gateway.Config // what the gateway was given
}

func newStack(t testing.TB, cfg gateway.Config) *stack {
	t.Helper()
	return newStackWith(t, cfg, workers.Options{})
}

// newStackWith is newStack with wo the demo group's options, to which it
// adds what newStack gives the group (Ready, Heartbeat, Logger, and the
// gateway's Metrics, Topology, TracerProvider and Propagator).
func newStackWith(t testing.TB, cfg gateway.Config, wo workers.Options) *stack {
	t.Helper()
	emb, _, _ := testkit.JetStream(t) // shut down after the cleanup below
	s := &stack{emb: emb, cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	var conns []*nats.Conn
	var srv *httptest.Server
	// One cleanup, in dependency order: HTTP, gateway, workers, then the
	// connections (the server shuts down after).
	t.Cleanup(func() {
		if s.gw != nil {
			s.gw.Drain()
		}
		if srv != nil {
			srv.Close()
		}
		if s.gw != nil {
			s.gw.Close()
		}
		cancel()
		if len(conns) > 0 {
			if err := <-ran; err != nil {
				t.Errorf("demo group: %v", err)
			}
		}
		for _, nc := range conns {
			nc.Close()
		}
	})
	connect := func() *nats.Conn {
		nc, err := emb.Connect()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		return nc
	}
	ready := make(chan struct{})
	workerNC := connect()
	go func() {
		// The worker's metrics go where the gateway's do, as in dev.
		wo.Ready, wo.Heartbeat, wo.Logger, wo.Metrics, wo.Topology = ready, time.Second, quietLog, cfg.Metrics, cfg.Topology
		wo.TracerProvider, wo.Propagator = cfg.TracerProvider, cfg.Propagator
		ran <- examples.Demo().Run(ctx, workerNC, wo)
	}()
	select {
	case <-ready:
	case err := <-ran:
		ran <- nil
		t.Fatalf("demo group: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	var err error
	if s.gw, err = gateway.New(ctx, connect(), cfg); err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(s.gw)
	s.url = srv.URL
	return s
}

// rawResponse is an HTTP response to a hand-made MCP request.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to the MCP endpoint with the headers a conforming client
// sends, then the extra ones ("" deletes a header).
func post(t testing.TB, url, body string, headers ...string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return do(t, req, headers...)
}

func do(t testing.TB, req *http.Request, headers ...string) rawResponse {
	t.Helper()
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// initSession opens a session with a raw initialize and returns its id.
func initSession(t testing.TB, url string) string {
	t.Helper()
	r := post(t, url, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if r.status != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", r.status, r.body)
	}
	sid := r.header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	return sid
}

// quietLog keeps in-process components' logs out of test and benchmark
// output; failures are reported by assertions.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// runGroup serves g on the stack's JetStream for the rest of the test, traced
// as the gateway is, and waits until the gateway's registry snapshot has
// tool.
func (s *stack) runGroup(t *testing.T, g *workers.Group, tool string) {
	t.Helper()
	s.runGroupWith(t, g, tool, workers.Options{})
}

// runGroupWith is runGroup with wo the group's options, to which it adds
// Ready, Logger and the gateway's tracing.
func (s *stack) runGroupWith(t *testing.T, g *workers.Group, tool string, wo workers.Options) {
	t.Helper()
	wo.Logger, wo.TracerProvider, wo.Propagator = quietLog, s.cfg.TracerProvider, s.cfg.Propagator
	s.serve(t, g.Run, wo, tool)
}

// serve runs run (a group's Run, or what serves one) on its own
// connection to the stack's JetStream for the rest of the test, with wo
// and a Ready it waits for (30s at most), then waits until the gateway's
// snapshot has tool (none when "").
func (s *stack) serve(t testing.TB, run func(context.Context, *nats.Conn, workers.Options) error, wo workers.Options, tool string) {
	t.Helper()
	nc, err := s.emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready, ran := make(chan struct{}), make(chan error, 1)
	wo.Ready = ready
	go func() { ran <- run(ctx, nc, wo) }()
	t.Cleanup(func() { stop(); <-ran; nc.Close() })
	select {
	case <-ready:
	case err := <-ran:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not serving within 30s")
	}
	if tool != "" {
		testkit.Eventually(t, "tool "+tool+" in the registry snapshot", 10*time.Second, func() bool { return s.gw.Registry().Tool(tool) != nil })
	}
}

// connectMCPGo starts mark3labs/mcp-go's Streamable HTTP client on
// endpoint with opts and initializes it, named name, at revision
// 2025-11-25; the caller closes it. before, if set, runs before
// initialize (to set notification handlers).
func connectMCPGo(t testing.TB, ctx context.Context, endpoint, name string, before func(*mcpgoclient.Client), opts ...mcpgoclient.ClientOption) *mcpgoclient.Client {
	t.Helper()
	c, err := mcpgoclient.NewStreamableHttpClient(endpoint, transport.WithHTTPBasicClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	c = mcpgoclient.NewClient(c.GetTransport(), opts...)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(c)
	}
	if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: "2025-11-25", ClientInfo: mcpgo.Implementation{Name: name, Version: "1"},
	}}); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// connectOfficial connects the official go-sdk client, named name and
// pinned to revision 2025-11-25, to endpoint; the caller closes the session.
func connectOfficial(t testing.TB, ctx context.Context, endpoint, name string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, opts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{}, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// awaitN receives n values from ch, failing the test with what if ctx ends
// first.
func awaitN[T any](t testing.TB, ctx context.Context, ch <-chan T, n int, what string) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal(what)
		}
	}
}
