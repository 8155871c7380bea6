package main

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// authNATS starts a nats-server on loopback accepting user "u" with
// password "right-pw" and the nkey user of pub.
func authNATS(t *testing.T, pub string) string {
	t.Helper()
	return startNATS(t, &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "u", Password: "right-pw"}}, Nkeys: []*server.NkeyUser{{Nkey: pub}}}).ClientURL()
}

// startNATS starts a nats-server with opts, shut down with the test, and
// returns it once it takes connections.
func startNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s
}

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// TestNATSFlagsRefuseConflicts: credentials given two ways, a password
// without a user and a certificate without its key are refused, and the
// error holds no secret.
func TestNATSFlagsRefuseConflicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      natsFlags
		getenv func(string) string
	}{
		{"creds and token", natsFlags{creds: "x.creds"}, env(envNATSToken, "tok-s3cret")},
		{"user and token", natsFlags{}, env(envNATSUser, "u", envNATSPassword, "pw-s3cret", envNATSToken, "tok-s3cret")},
		{"nkey and creds", natsFlags{creds: "x.creds", nkey: "x.nk"}, env()},
		{"password without user", natsFlags{}, env(envNATSPassword, "pw-s3cret")},
		{"cert without key", natsFlags{tlsCert: "c.pem"}, env()},
	} {
		_, err := tc.f.options(tc.getenv)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error holds a secret: %v", tc.name, err)
		}
	}
}

// TestConnectKeepsSecrets: connecting with a wrong password (from the
// environment, or in the URL) fails with an authorization error that holds
// neither password, nor do the logs; the right password and an nkey seed
// file connect.
func TestConnectKeepsSecrets(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	url := authNATS(t, pub)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	const wrong = "wrong-Passw0rd-xyzzy"
	_, err = connect(natsFlags{url: url}, "test", "", env(envNATSUser, "u", envNATSPassword, wrong), log)
	if err == nil {
		t.Fatal("a wrong password connected")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("error does not name the authorization failure: %v", err)
	}
	inURL := strings.Replace(url, "nats://", "nats://u:"+wrong+"-url@", 1)
	_, uerr := connect(natsFlags{url: inURL}, "test", "", env(), log)
	if uerr == nil {
		t.Fatal("a wrong password in the URL connected")
	}
	for _, e := range []error{err, uerr} {
		if strings.Contains(e.Error(), wrong) {
			t.Errorf("error holds the password: %v", e)
		}
	}
	if strings.Contains(logs.String(), wrong) {
		t.Errorf("logs hold the password:\n%s", logs.String())
	}

	nc, err := connect(natsFlags{url: url}, "test", "_INBOX.test", env(envNATSUser, "u", envNATSPassword, "right-pw"), log)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got := nc.NewInbox(); !strings.HasPrefix(got, "_INBOX.test.") {
		t.Errorf("inbox %s, want it under _INBOX.test", got)
	}
	nc.Close()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err = connect(natsFlags{url: url, nkey: seedFile}, "test", "", env(), log)
	if err != nil {
		t.Fatalf("nkey seed file: %v", err)
	}
	nc.Close()
	_, err = connect(natsFlags{url: url, nkey: filepath.Join(t.TempDir(), "missing.nk")}, "test", "", env(), log)
	if err == nil || !strings.Contains(err.Error(), "--nats-nkey") {
		t.Errorf("missing seed file: %v, want an error naming --nats-nkey", err)
	}
}

// TestNATSFlagsHelp: every NATS flag's help says its default, and the
// help names the environment variables of the secrets.
func TestNATSFlagsHelp(t *testing.T) {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	var f natsFlags
	f.register(fs)
	fs.Usage()
	help := out.String()
	for _, name := range []string{"nats-creds", "nats-nkey", "nats-tls-ca", "nats-tls-cert", "nats-tls-key"} {
		fl := fs.Lookup(name)
		if fl == nil || !strings.Contains(fl.Usage, "default") {
			t.Errorf("--%s: help %q says no default", name, fl.Usage)
		}
	}
	for _, v := range []string{envNATSUser, envNATSPassword, envNATSToken} {
		if !strings.Contains(help, v) {
			t.Errorf("help does not name %s:\n%s", v, help)
		}
	}
}

// TestPrintPermissions: provision --print-permissions prints a user per
// role and group, a worker's consumer subjects on every partition, and
// connects to nothing.
func TestPrintPermissions(t *testing.T) {
	var out bytes.Buffer
	if err := runProvision(t.Context(), []string{"--print-permissions", "--groups", "a,b", "--partitions", "3", "--nats", "nats://127.0.0.1:1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{`user: "mcpstream-gateway"`, `user: "mcpstream-worker-a"`, `user: "mcpstream-worker-b"`,
		`user: "mcpstream-provision"`, `user: "mcpstream-replay"`, "$MCPSTREAM_WORKER_A_PASSWORD",
		`"$JS.API.CONSUMER.MSG.NEXT.MCP_REQ_2.grp-a"`, `"$JS.API.DIRECT.GET.MCP_RESULTS_b.>"`} {
		if !strings.Contains(s, want) {
			t.Errorf("printed permissions lack %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "MCP_REQ_3") {
		t.Errorf("printed a fourth partition for --partitions 3:\n%s", s)
	}
	if err := runProvision(t.Context(), []string{"--print-permissions", "--groups", "bad group"}, io.Discard, io.Discard); err == nil {
		t.Error("an invalid group name was accepted")
	}
}

// TestConnectTokenKeepsSecret: a wrong token (from the environment) fails
// with an authorization error that does not hold it; the right one
// connects.
func TestConnectTokenKeepsSecret(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Authorization: "right-tok"})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const wrong = "wrong-T0ken-plugh"
	_, err = connect(natsFlags{url: s.ClientURL()}, "test", "", env(envNATSToken, wrong), log)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("wrong token: %v, want an authorization violation", err)
	}
	if strings.Contains(err.Error()+logs.String(), wrong) {
		t.Errorf("the token shows: %v\n%s", err, logs.String())
	}
	nc, err := connect(natsFlags{url: s.ClientURL()}, "test", "", env(envNATSToken, "right-tok"), log)
	if err != nil {
		t.Fatalf("right token: %v", err)
	}
	nc.Close()
}

// TestConnectCredsFile: --nats-creds authenticates with a user JWT and its
// seed against a server trusting the operator that signed the account.
func TestConnectCredsFile(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	ojwt, err := jwt.NewOperatorClaims(opub).Encode(okp)
	must(err)
	oc, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)
	akp, err := nkeys.CreateAccount()
	must(err)
	apub, err := akp.PublicKey()
	must(err)
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	must(err)
	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	must(err)
	useed, err := ukp.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)
	file := filepath.Join(t.TempDir(), "user.creds")
	must(os.WriteFile(file, creds, 0o600))

	resolver := &server.MemAccResolver{}
	must(resolver.Store(apub, ajwt))
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver})
	must(err)
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := connect(natsFlags{url: s.ClientURL()}, "test", "", env(), log); err == nil {
		t.Fatal("connected without credentials")
	}
	nc, err := connect(natsFlags{url: s.ClientURL(), creds: file}, "test", "", env(), log)
	if err != nil {
		t.Fatalf("--nats-creds: %v", err)
	}
	nc.Close()
}
