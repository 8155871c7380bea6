package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/streams"
)

// passwordNATS starts a JetStream nats-server on loopback whose only user
// is "u" with password pw, provisioned with the default topology; rotate
// restarts it, on the same port and store, with another password, which
// refuses the reconnects of the connections that authenticated with the
// old one. (Not a reload of the options: a reload refusing the clients
// connected sends auth error events that read their counters while their
// read loops write them, a data race in nats-server 2.15.2 that the race
// detector caught in this test, with or without a system account.)
func passwordNATS(t *testing.T, pw string) (url string, rotate func(string)) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir(),
		NoSystemAccount: true, Users: []*server.User{{Username: "u", Password: pw}}}
	s := startNATS(t, opts)
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("u", pw))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.Provision(ctx, js, streams.Topology{}); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), func(newPW string) {
		o := opts.Clone()
		o.Port = s.Addr().(*net.TCPAddr).Port
		o.Users = []*server.User{{Username: "u", Password: newPW}}
		s.Shutdown()
		s.WaitForShutdown()
		startNATS(t, o)
	}
}

// TestNATSClosedEndsCommand: when the password of a gateway's and a
// worker's NATS user changes under them, nats.go's reconnects fail
// authorization and it closes the connection for good; each command then
// ends with an error saying so (the process exits 1, and Kubernetes
// restarts it with the new secret), instead of running on without NATS.
func TestNATSClosedEndsCommand(t *testing.T) {
	url, rotate := passwordNATS(t, "old-pw")
	t.Setenv(envNATSUser, "u")
	t.Setenv(envNATSPassword, "old-pw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		cmd string
		err error
	}
	done := make(chan result, 2)
	started := make(chan struct{}, 2)
	gwOut := signalWriter{want: "MCP endpoint", ch: started}
	wOut := signalWriter{want: "worker group demo serving", ch: started}
	go func() {
		err := runGateway(ctx, []string{"--nats", url, "--addr", "127.0.0.1:0", "--log-level", "error"}, gwOut, io.Discard)
		done <- result{"gateway", err}
	}()
	go func() {
		err := runWorker(ctx, []string{"--nats", url, "--log-level", "error"}, wOut, io.Discard)
		done <- result{"worker", err}
	}()
	for range 2 {
		select {
		case <-started:
		case r := <-done:
			t.Fatalf("%s ended before serving: %v", r.cmd, r.err)
		case <-time.After(30 * time.Second):
			t.Fatal("gateway and worker not serving after 30s")
		}
	}
	rotate("new-pw")
	timeout := time.After(30 * time.Second)
	for left := 2; left > 0; left-- {
		select {
		case r := <-done:
			if r.err == nil || !strings.Contains(r.err.Error(), "NATS connection closed") {
				t.Errorf("%s: %v, want an error saying the NATS connection closed", r.cmd, r.err)
			}
		case <-timeout:
			cancel() // the commands that still run end, for goleak
			for ; left > 0; left-- {
				<-done
			}
			t.Fatal("a command still runs 30s after its NATS connection closed for good")
		}
	}
}

// TestHealthzFailsOnceNATSClosed: the metrics endpoint's /healthz answers
// 200 while the process's NATS connection is open or reconnecting, 503
// naming it once closed for good.
func TestHealthzFailsOnceNATSClosed(t *testing.T) {
	url, _ := passwordNATS(t, "pw")
	nc, err := nats.Connect(url, nats.UserInfo("u", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var out strings.Builder
	obs, err := observe(context.Background(), "test", "127.0.0.1:0", &out)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.close()
	alive := closedCheck(func() []*nats.Conn { return []*nats.Conn{nc} })
	obs.alive.Store(&alive)
	healthz := strings.Replace(strings.Fields(out.String())[2], "/metrics", "/healthz", 1)
	get := func() (int, string) {
		resp, err := http.Get(healthz)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusOK {
		t.Errorf("connected: %d %q", code, body)
	}
	nc.Close()
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "nats connection closed") {
		t.Errorf("closed: %d %q, want 503 naming the closed connection", code, body)
	}
}
