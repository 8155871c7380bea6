package itest

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// hopTransport sends requests to gateway A until A has issued a session id
// (initialize), and every later one to gateway B, as a load balancer without
// affinity would. It records the session id.
type hopTransport struct {
	b *url.URL

	mu        sync.Mutex
	sessionID string
	hosts     map[string]int
}

func (h *hopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	first := h.sessionID == ""
	h.mu.Unlock()
	if !first {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = h.b.Scheme, h.b.Host
		req.Host = h.b.Host
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hosts[req.URL.Host]++
	if first && err == nil && h.sessionID == "" {
		h.sessionID = resp.Header.Get("Mcp-Session-Id")
	}
	return resp, err
}

// TestSessionAcrossGateways: a session created on gateway A is used on
// gateway B (a separate process on the same JetStream) by both real
// clients; when the client ends it on B, A answers 404 for it too.
func TestSessionAcrossGateways(t *testing.T) {
	devA, endpointA, natsURL := startDev(t, true)
	gwB := start(t, "gateway-b", "gateway", "--nats", natsURL, "--addr", "127.0.0.1:0", "--log-level", "warn")
	endpointB := gwB.waitLine(endpointRE, 30*time.Second)[1]
	bURL, err := url.Parse(endpointB)
	if err != nil {
		t.Fatal(err)
	}
	aURL, _ := url.Parse(endpointA)

	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			hop := &hopTransport{b: bURL, hosts: map[string]int{}}
			c, err := dial(ctx, endpointA, &http.Client{Transport: hop})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				want := name + " on B " + string(rune('a'+i))
				got, _, err := c.call(ctx, "echo", map[string]any{"text": want})
				if err != nil || got != want {
					t.Fatalf("echo through B = %q, %v; want %q", got, err, want)
				}
			}
			hop.mu.Lock()
			sid, onA, onB := hop.sessionID, hop.hosts[aURL.Host], hop.hosts[bURL.Host]
			hop.mu.Unlock()
			if sid == "" || onA > 2 || onB < 10 {
				t.Fatalf("session %q: %d requests on A, %d on B; want only the handshake on A", sid, onA, onB)
			}
			if err := c.close(); err != nil { // DELETE, sent to B
				t.Fatalf("close: %v", err)
			}
			// A learns of the deletion from the session bucket's watch.
			testkit.Eventually(t, "gateway A answering 404 for the session deleted on B", 5*time.Second, func() bool {
				r := post(t, endpointA, `{"jsonrpc":"2.0","id":9,"method":"ping"}`, "Mcp-Session-Id", sid)
				return r.status == http.StatusNotFound
			})
		})
	}
	gwB.stop()
	devA.stop()
}
