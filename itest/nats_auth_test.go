package itest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// tlsFiles are the PEM files of a test CA, a server certificate for
// 127.0.0.1 and a client certificate, all signed by the CA.
type tlsFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate to dir.
func makeCerts(t *testing.T, dir string) tlsFiles {
	t.Helper()
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpstream test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) (cert, key string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(cn+".pem", "CERTIFICATE", der), writePEM(cn+"-key.pem", "EC PRIVATE KEY", kb)
	}
	f := tlsFiles{ca: writePEM("ca.pem", "CERTIFICATE", caDER)}
	f.serverCert, f.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	f.clientCert, f.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth, nil)
	return f
}

// authServer is a nats-server with JetStream and TLS (client certificates
// required) whose users are those `mcpstream provision
// --print-permissions` prints, read by the server's own
// configuration parser.
type authServer struct {
	url       string
	tls       tlsFiles
	passwords map[string]string // user -> password
	users     string            // the printed authorization block
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	dir := t.TempDir()
	a := &authServer{tls: makeCerts(t, dir), passwords: map[string]string{}}
	p := start(t, "print-permissions", "provision", "--print-permissions", "--groups", "demo,other,conformance", "--partitions", "2")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("provision --print-permissions: status %d", code)
	}
	p.mu.Lock()
	a.users = strings.Join(p.lines, "\n")
	p.mu.Unlock()
	// The passwords, from the variables the block names, come from the
	// environment, where the configuration parser finds them.
	for _, m := range regexp.MustCompile(`user: "(\S+)"\s+password: \$(\w+)`).FindAllStringSubmatch(a.users, -1) {
		pw := "pw-" + strings.ReplaceAll(m[1], "mcpstream-", "") + "-s3cret"
		t.Setenv(m[2], pw)
		a.passwords[m[1]] = pw
	}
	if len(a.passwords) != 6 {
		t.Fatalf("printed %d users, want 6 (gateway, worker-demo, worker-other, worker-conformance, provision, replay):\n%s", len(a.passwords), a.users)
	}
	conf := fmt.Sprintf(`host: 127.0.0.1
port: -1
jetstream { store_dir: %q }
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 5
}
%s
`, filepath.Join(dir, "js"), a.tls.serverCert, a.tls.serverKey, a.tls.ca, a.users)
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the printed configuration: %v\n%s", err, conf)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	a.url = fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	return a
}

// env is the environment of a process connecting as user.
func (a *authServer) env(user string) []string {
	return []string{"MCPSTREAM_NATS_USER=" + user, "MCPSTREAM_NATS_PASSWORD=" + a.passwords[user]}
}

// args are the NATS flags of a process: the server's URL and TLS files.
func (a *authServer) args() []string {
	return []string{"--nats", a.url, "--nats-tls-ca", a.tls.ca, "--nats-tls-cert", a.tls.clientCert, "--nats-tls-key", a.tls.clientKey}
}

// connect connects nats.go as user over TLS, with the user's role's inbox
// prefix. The server's refusals, which it reports asynchronously (a
// refused JetStream API request just goes unanswered), arrive on the
// returned channel.
func (a *authServer) connect(t *testing.T, user, inbox string) (*nats.Conn, <-chan error) {
	t.Helper()
	refusals := make(chan error, 64)
	nc, err := nats.Connect(a.url, nats.UserInfo(user, a.passwords[user]), nats.RootCAs(a.tls.ca),
		nats.ClientCert(a.tls.clientCert, a.tls.clientKey), nats.CustomInboxPrefix(inbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case refusals <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, refusals
}

// refused runs op, which must fail, and requires the server to report a
// permissions violation naming subject on refusals.
func refused(t *testing.T, refusals <-chan error, what, subject string, op func(context.Context) error) {
	t.Helper()
	// A refused request gets no reply: op would wait out its context.
	// The server's refusal, which comes asynchronously, ends it instead.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opErr := make(chan error, 1)
	go func() { opErr <- op(ctx) }()
	seen := false
	for !seen {
		select {
		case err := <-refusals:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				seen = true
				cancel()
			}
		case <-ctx.Done():
			t.Errorf("%s: the server reported no permissions violation for %s", what, subject)
			<-opErr
			return
		}
	}
	if err := <-opErr; err == nil {
		t.Errorf("%s succeeded, want it refused", what)
	}
}

// TestLeastPrivilegeNATS runs provision, a worker, a gateway and replay as
// processes over TLS, each as the user of its role with exactly the
// permissions `provision --print-permissions` prints, and serves the
// official go-sdk client through them; then checks that the server
// refuses what the roles must not do.
func TestLeastPrivilegeNATS(t *testing.T) {
	a := startAuthServer(t)

	prov := startEnv(t, "provision", a.env("mcpstream-provision"), append([]string{"provision", "--partitions", "2", "--log-level", "warn"}, a.args()...)...)
	if code := prov.wait(60 * time.Second); code != 0 {
		t.Fatalf("provision as mcpstream-provision: status %d", code)
	}
	worker := startEnv(t, "worker", a.env("mcpstream-worker-demo"),
		append([]string{"worker", "--examples", "demo", "--log-level", "warn", "--record-results"}, a.args()...)...)
	worker.waitLine(workerRE, 60*time.Second)
	conf := startEnv(t, "worker conformance", a.env("mcpstream-worker-conformance"),
		append([]string{"worker", "--examples", "conformance", "--log-level", "warn"}, a.args()...)...)
	conf.waitLine(workerRE, 60*time.Second)
	gw := startEnv(t, "gateway", a.env("mcpstream-gateway"), append([]string{"gateway", "--addr", "127.0.0.1:0", "--log-level", "warn"}, a.args()...)...)
	endpoint := gw.waitLine(endpointRE, 60*time.Second)[1]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := connectOfficial(t, ctx, endpoint, "least-privilege", nil)
	defer cs.Close()
	if cs.ID() == "" {
		t.Error("no session id: the session was not stored")
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	found := false
	for _, tool := range tools.Tools {
		found = found || tool.Name == "echo"
	}
	if !found {
		t.Fatalf("tools/list has no echo: %d tools", len(tools.Tools))
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "least privilege"}})
	if err != nil {
		t.Fatalf("tools/call echo: %v", err)
	}
	if res.IsError || len(res.Content) == 0 || !strings.Contains(fmt.Sprint(res.Content[0].(*mcp.TextContent).Text), "least privilege") {
		t.Fatalf("tools/call echo: %+v", res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call add: %v %+v", err, res)
	}
	// A worker's request to the client (mcp.reply, then mcp.answer back),
	// and a result stored in the result bucket (the tool is not idempotent).
	sampling := connectOfficial(t, ctx, endpoint, "least-privilege-sampling", &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m1",
				Content: &mcp.TextContent{Text: "echo of " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
	})
	defer sampling.Close()
	res, err = sampling.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "two words"}})
	if err != nil {
		t.Fatalf("tools/call test_sampling: %v", err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || text != "LLM response: echo of two words" {
		t.Fatalf("tools/call test_sampling: %q (isError %v)", text, res.IsError)
	}

	rep := startEnv(t, "replay", a.env("mcpstream-replay"), append([]string{"replay", "--results", "--tool", "echo"}, a.args()...)...)
	if code := rep.wait(60 * time.Second); code != 0 {
		t.Fatalf("replay as mcpstream-replay: status %d", code)
	}
	rep.mu.Lock()
	out := strings.Join(rep.lines, "\n")
	rep.mu.Unlock()
	if !strings.Contains(out, `"least privilege"`) {
		t.Errorf("replay printed no echo call:\n%s", out)
	}

	t.Run("worker cannot consume another group", func(t *testing.T) { refusedConsuming(t, a) })
	t.Run("gateway cannot consume", func(t *testing.T) {
		nc, refusals := a.connect(t, "mcpstream-gateway", streams.InboxPrefix(streams.RoleGateway, ""))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, refusals, "gateway opening grp-demo", "$JS.API.CONSUMER.INFO.MCP_REQ_0.grp-demo", func(ctx context.Context) error {
			_, err := js.Consumer(ctx, streams.StreamName(0), streams.ConsumerName("demo"))
			return err
		})
		refused(t, refusals, "gateway pulling from grp-demo", "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_0.grp-demo", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_0.grp-demo", []byte(`{"batch":1}`))
			return err
		})
	})

	t.Run("replay cannot consume a group", func(t *testing.T) {
		nc, refusals := a.connect(t, "mcpstream-replay", streams.InboxPrefix(streams.RoleReplay, ""))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, refusals, "replay pulling from grp-demo", "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_1.grp-demo", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_1.grp-demo", []byte(`{"batch":1}`))
			return err
		})
		refused(t, refusals, "replay deleting grp-demo", "$JS.API.CONSUMER.DELETE.MCP_REQ_1.grp-demo", func(ctx context.Context) error {
			return js.DeleteConsumer(ctx, streams.StreamName(1), streams.ConsumerName("demo"))
		})
	})

	gw.stop()
	worker.stop()
	conf.stop()
	// Nothing the processes did was refused (the server's refusals are
	// logged as warnings).
	for _, p := range []*proc{prov, worker, conf, gw, rep} {
		p.mu.Lock()
		logs := p.stderr.String()
		p.mu.Unlock()
		if strings.Contains(strings.ToLower(logs), "permissions violation") {
			t.Errorf("%s was refused something:\n%s", p.name, logs)
		}
	}
}

// refusedConsuming checks, with worker-demo's credentials, that the
// server refuses creating, opening and pulling from group other's
// consumer, publishing other's requests and reading other's inboxes,
// while worker-other may create its own consumers and worker-demo publish
// its own group's requests.
func refusedConsuming(t *testing.T, a *authServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := streams.Topology{Partitions: 2}
	onc, _ := a.connect(t, "mcpstream-worker-other", streams.InboxPrefix(streams.RoleWorker, "other"))
	other, err := jetstream.New(onc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.EnsureGroup(ctx, other, topo, "other"); err != nil {
		t.Fatalf("worker-other creating its own consumers: %v", err)
	}
	nc, refusals := a.connect(t, "mcpstream-worker-demo", streams.InboxPrefix(streams.RoleWorker, "demo"))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	refused(t, refusals, "worker-demo creating grp-other", "$JS.API.CONSUMER.CREATE.MCP_REQ_0.grp-other.mcp.req.other.0", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateConsumer(ctx, streams.StreamName(0), topo.ConsumerConfig("other", 0))
		return err
	})
	refused(t, refusals, "worker-demo creating grp-demo on other's requests", "$JS.API.CONSUMER.CREATE.MCP_REQ_0.grp-demo.mcp.req.other.0", func(ctx context.Context) error {
		cfg := topo.ConsumerConfig("demo", 0)
		cfg.FilterSubject = streams.RequestSubject("other", 0)
		_, err := js.CreateOrUpdateConsumer(ctx, streams.StreamName(0), cfg)
		return err
	})
	refused(t, refusals, "worker-demo opening grp-other", "$JS.API.CONSUMER.INFO.MCP_REQ_0.grp-other", func(ctx context.Context) error {
		_, err := js.Consumer(ctx, streams.StreamName(0), streams.ConsumerName("other"))
		return err
	})
	refused(t, refusals, "worker-demo pulling from grp-other", "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_0.grp-other", func(ctx context.Context) error {
		_, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_0.grp-other", []byte(`{"batch":1}`))
		return err
	})
	refused(t, refusals, "worker-demo publishing a request", "mcp.req.other.0", func(ctx context.Context) error {
		_, err := js.Publish(ctx, streams.RequestSubject("other", 0), []byte("x"))
		return err
	})
	// Its own group's requests it may publish: a replica that drains hands
	// an envelope on its last delivery back so. This one has expired, and
	// the demo worker drops it.
	env := schema.Envelope{Key: "handed-back", Method: schema.MethodToolsCall, Name: "echo", Deadline: 1, ReplyTo: streams.ReplySubject("gw-none")}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, streams.RequestSubject("demo", 0), b); err != nil {
		t.Errorf("worker-demo publishing a request of its own group again: %v", err)
	}
	refused(t, refusals, "worker-demo reading other's inboxes", "_INBOX.worker-other.>", func(context.Context) error {
		sub, err := nc.SubscribeSync("_INBOX.worker-other.>")
		if err != nil {
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := nc.Flush(); err != nil {
			return err
		}
		return errors.New("subscribed: the server refuses asynchronously")
	})
}

// TestNATSWrongPassword: a gateway given a wrong password (from the
// environment) exits with an authorization error that does not hold the
// password, in its error or its logs.
func TestNATSWrongPassword(t *testing.T) {
	a := startAuthServer(t)
	const wrong = "not-the-Passw0rd-xyzzy"
	p := startEnv(t, "gateway", []string{"MCPSTREAM_NATS_USER=mcpstream-gateway", "MCPSTREAM_NATS_PASSWORD=" + wrong},
		append([]string{"gateway", "--addr", "127.0.0.1:0", "--log-level", "debug"}, a.args()...)...)
	if code := p.wait(30 * time.Second); code == 0 {
		t.Fatal("gateway with a wrong password exited with status 0")
	}
	p.mu.Lock()
	out := p.stderr.String() + strings.Join(p.lines, "\n")
	p.mu.Unlock()
	if !strings.Contains(strings.ToLower(out), "authorization violation") {
		t.Errorf("output does not name the authorization failure:\n%s", out)
	}
	if strings.Contains(out, wrong) {
		t.Errorf("output holds the password:\n%s", out)
	}
}
