package gateway_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
)

// Short deadlines, for slow clients to be cut off within a test.
const (
	headerTimeout = 300 * time.Millisecond
	bodyTimeout   = 300 * time.Millisecond
	idleTimeout   = 300 * time.Millisecond
)

// rawConn dials the test gateway's server on loopback; the connection is
// closed at the end of the test.
func rawConn(t *testing.T, tg *testGateway) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(tg.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// trickle writes b to c a byte every tick, in a goroutine, until it is
// all written or a write fails; the channel closes when it stops.
func trickle(c net.Conn, b []byte, tick time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range b {
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
			time.Sleep(tick) // the client's pace
		}
	}()
	return done
}

// closedWithin reads c until the server closes it, which must happen
// within limit, and returns when it did.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s", limit)
	}
	return time.Since(start)
}

// postHead is the head of a POST to the MCP endpoint of a body of n
// bytes, in session hs.
func postHead(hs []string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n", gateway.MCPPath, n)
	for i := 0; i+1 < len(hs); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hs[i], hs[i+1])
	}
	return b.String() + "\r\n"
}

// TestSlowClients checks the deadlines of slow clients on real TCP
// connections: a client sending its headers a byte at a time is cut off
// after HeaderTimeout, its body a byte at a time answered 408 (-32600) and
// cut off after BodyTimeout, and an idle kept-alive connection closed
// after IdleTimeout; while a steady upload of 4 MiB that takes longer than
// BodyTimeout (but keeps MinBodyRate) is served, and neither a call held
// by its worker nor a session's event stream is cut by them. After a
// burst of slow clients, goroutines, open files and heap return to what
// they were.
func TestSlowClients(t *testing.T) {
	reg := prometheus.NewRegistry()
	tg := newTestGateway(t, gateway.Config{HeaderTimeout: headerTimeout, BodyTimeout: bodyTimeout, IdleTimeout: idleTimeout,
		MinBodyRate: 2 << 20, KeepAlive: 50 * time.Millisecond, Metrics: reg})
	hs := tg.initialize(t, "2025-11-25", `{}`)

	t.Run("headers", func(t *testing.T) {
		c := rawConn(t, tg)
		trickle(c, []byte(postHead(hs, 2)), 20*time.Millisecond)
		if d := closedWithin(t, c, headerTimeout+2*time.Second); d < headerTimeout*9/10 {
			t.Errorf("closed after %s, before HeaderTimeout", d)
		}
	})

	t.Run("body", func(t *testing.T) {
		c := rawConn(t, tg)
		body := callBody(1, "echo", `{"text":"slow"}`, "")
		if _, err := io.WriteString(c, postHead(hs, len(body))); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		trickle(c, []byte(body), 20*time.Millisecond)
		_ = c.SetReadDeadline(start.Add(bodyTimeout + 2*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(start); d < bodyTimeout*9/10 {
			t.Errorf("answered after %s, before BodyTimeout", d)
		}
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("status %d, close %v, want 408 and close: %s", resp.StatusCode, resp.Close, b)
		}
		if m := decode(t, b); m.Error == nil || m.Error.Code != schema.CodeInvalidRequest {
			t.Fatalf("want -32600: %s", b)
		}
		closedWithin(t, c, time.Second)
	})

	t.Run("steady 4 MiB upload", func(t *testing.T) {
		text := strings.Repeat("u", 4<<20-200)
		body := callBody(2, "echo", `{"text":"`+text+`"}`, "")
		c := rawConn(t, tg)
		if _, err := io.WriteString(c, postHead(hs, len(body))); err != nil {
			t.Fatal(err)
		}
		// 64 KiB every 16 ms: 4 MiB/s, twice MinBodyRate, about a second.
		start := time.Now()
		for rest := body; rest != ""; {
			n := min(len(rest), 64<<10)
			if _, err := io.WriteString(c, rest[:n]); err != nil {
				t.Fatalf("after %d bytes: %v", len(body)-len(rest), err)
			}
			rest = rest[n:]
			time.Sleep(16 * time.Millisecond) // the client's pace
		}
		took := time.Since(start)
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %.300s", resp.StatusCode, b)
		}
		var m rpcMessage
		if err := json.Unmarshal(b, &m); err != nil || len(toolText(t, m.Result)) != len(text) {
			t.Fatalf("result: %v %.300s", err, b)
		}
		if took < 2*bodyTimeout {
			t.Errorf("the upload took %s: too fast to show that MinBodyRate extends BodyTimeout", took)
		}
		t.Logf("4 MiB uploaded in %s", took)
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c := rawConn(t, tg)
		if _, err := io.WriteString(c, "GET "+gateway.HealthPath+" HTTP/1.1\r\nHost: gateway\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("health: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(idleTimeout + 2*time.Second))
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection: %v, want EOF", err)
		}
		if d := time.Since(start); d < idleTimeout*9/10 {
			t.Errorf("closed after %s, before IdleTimeout", d)
		}
	})

	t.Run("long call and event stream", func(t *testing.T) {
		ctx := t.Context()
		stream := tg.open(t, ctx, http.MethodGet, tg.url, "", append([]string{"Accept", "text/event-stream"}, hs...)...)
		if stream.StatusCode != http.StatusOK {
			t.Fatalf("GET: status %d", stream.StatusCode)
		}
		done := tg.postAsync(ctx, callBody(3, "hold", `{}`, ""), hs...)
		h := tg.awaitHeld(t)
		// Past every deadline, three times over: keep-alive comments keep
		// coming on the stream (the gateway writes one every 50ms).
		br := bufio.NewReader(stream.Body)
		start := time.Now()
		comments := 0
		for time.Since(start) < 3*max(headerTimeout, bodyTimeout, idleTimeout) {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("the event stream ended after %s: %v", time.Since(start), err)
			}
			if strings.HasPrefix(line, ":") {
				comments++
			}
		}
		h.release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": "held"}}}
		r := await(t, done, "the held call's answer")
		if m := wantResult(t, r); toolText(t, m.Result) != "held" {
			t.Fatalf("held call: %s", r.body)
		}
		if comments < 5 {
			t.Errorf("%d keep-alive comments in %s", comments, time.Since(start))
		}
	})

	t.Run("answer not read", func(t *testing.T) { unreadAnswer(t, tg, hs, reg) })
	t.Run("small answers not read", func(t *testing.T) { unreadSmallAnswers(t, tg, hs) })

	// A burst of slow clients: each is cut off, and what they held is
	// given back. (The baseline is taken here, after the 4 MiB upload,
	// which the embedded NATS server's stream cache keeps in memory for a
	// while.)
	tg.client.CloseIdleConnections()
	base := measure()
	var wg sync.WaitGroup
	for i := range 40 {
		c := rawConn(t, tg)
		head := postHead(hs, 100)
		if i%2 == 1 {
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			head = strings.Repeat(" ", 100)
		}
		trickle(c, []byte(head), 20*time.Millisecond)
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		})
	}
	wg.Wait()
	u := settles(t, base)
	t.Logf("baseline %v; after 40 slow clients %v", base, u)
	testkit.Eventually(t, "no event stream left open", waitFor, func() bool { return tg.g.OpenEventStreams() == 0 })
}

// calls counts the tools/call requests the gateway served, in its
// metrics.
func calls(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "mcpstream_gateway_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() == schema.MethodToolsCall {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestConnectionCap checks Config.MaxConns: with the cap's connections
// open, another is answered at once with 503, Retry-After and -32000, and
// closed; once one of them closes, a new connection is served.
func TestConnectionCap(t *testing.T) {
	const maxConns = 3
	tg := newTestGateway(t, gateway.Config{MaxConns: maxConns})
	health := "GET " + gateway.HealthPath + " HTTP/1.1\r\nHost: gateway\r\n\r\n"
	get := func(c net.Conn) (*http.Response, []byte, error) {
		if _, err := io.WriteString(c, health); err != nil {
			return nil, nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	tg.client.CloseIdleConnections()
	held := make([]net.Conn, maxConns)
	for i := range held {
		held[i] = rawConn(t, tg)
		if resp, b, err := get(held[i]); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %v %v %s", i, resp, err, b)
		}
	}
	for i := range 5 {
		c := rawConn(t, tg)
		start := time.Now()
		resp, b, err := get(c)
		if err != nil {
			t.Fatalf("refused connection %d: %v", i, err)
		}
		took := time.Since(start)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !resp.Close {
			t.Fatalf("status %d, Retry-After %q, close %v: %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, b)
		}
		if m := decode(t, b); m.Error == nil || m.Error.Code != schema.CodeOverloaded {
			t.Fatalf("want -32000: %s", b)
		}
		closedWithin(t, c, 2*time.Second)
		if took > time.Second {
			t.Errorf("refused after %s", took)
		}
	}
	held[0].Close()
	testkit.Eventually(t, "a new connection served once one closed", waitFor, func() bool {
		c := rawConn(t, tg)
		resp, _, err := get(c)
		return err == nil && resp.StatusCode == http.StatusOK
	})
}
