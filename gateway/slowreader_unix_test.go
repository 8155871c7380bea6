//go:build unix

package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpstream/mcpstream/internal/testkit"
)

// unreadAnswer: a client that posts a call whose answer is 2 MiB and reads
// none of it (its receive buffer set to 4 KiB before it connects, and the
// server's send buffers to 4 KiB, so that the answer cannot sit in the
// kernel's buffers) holds the call's request
// until the write's deadline, 2s plus what MinBodyRate (2 MiB/s in
// TestSlowClients) allows, about 3s; then the gateway closes the
// connection, and the client, reading at last, gets part of the answer.
// The call is the hold tool's, released with the 2 MiB answer, so that the
// request itself is small: a 2 MiB upload would race TestSlowClients'
// short BodyTimeout on a busy machine.
func unreadAnswer(t *testing.T, tg *testGateway, hs []string, reg *prometheus.Registry) {
	c, _ := smallBufferConn(t, tg)
	callsBefore := calls(t, reg)
	body := callBody(5, "hold", `{}`, "")
	if _, err := io.WriteString(c, postHead(hs, len(body))+body); err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("r", 2<<20)
	tg.awaitHeld(t).release <- map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}
	start := time.Now()
	testkit.Eventually(t, "the unread call's request to end", waitFor, func() bool { return calls(t, reg) == 1+callsBefore })
	took := time.Since(start)
	if took < 2*time.Second {
		t.Errorf("the request ended after %s: the answer fit in the buffers, or the deadline is shorter than 2s", took)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %d bytes", n)
	}
	if n >= int64(len(text)) {
		t.Fatalf("read %d bytes: the whole answer was sent", n)
	}
	t.Logf("the gateway gave up on the answer after %s; the client got %d bytes of it", took, n)
}

// unreadSmallAnswers: a client that sends calls one after another on one
// connection, each answer smaller than net/http holds until the handler
// returns (so written to the connection only as the response is flushed,
// after the handler), and reads none of them, with 4 KiB buffers both ways,
// is cut off once the answers fill the buffers: each flush is under the
// deadline front arms as the handler returns (writeTimeout, 2s), and the
// gateway closes the connection. Without it, the connection's goroutine
// would wait on the flush for as long as the client stays.
func unreadSmallAnswers(t *testing.T, tg *testGateway, hs []string) {
	c, closed := smallBufferConn(t, tg)
	body := callBody(6, "echo", `{"text":"`+strings.Repeat("s", 500)+`"}`, "")
	const sent = 200 // answers of about 700 bytes with their heads: 140 KB, far past the buffers
	start := time.Now()
	go func() {
		// Blocks once the gateway stops reading; ends when the connection
		// does.
		for range sent {
			if _, err := io.WriteString(c, postHead(hs, len(body))+body); err != nil {
				return
			}
		}
	}()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatalf("the connection is still open %s after %d unread answers began", waitFor, sent)
	}
	took := time.Since(start)
	if took < 2*time.Second {
		t.Errorf("closed after %s, before the write deadline", took)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client's side is still open after %d bytes", len(b))
	}
	if answered := strings.Count(string(b), "HTTP/1.1 200 OK"); answered == 0 || answered >= sent {
		t.Fatalf("%d answers of %d reached the client, want some and not all", answered, sent)
	} else {
		t.Logf("the gateway closed the connection after %s; %d answers of %d reached the client", took, answered, sent)
	}
}

// smallBufferConn serves tg's gateway on a listener of its own whose
// connections have 4 KiB send buffers, and connects a client with a 4 KiB
// receive buffer, so that what the client does not read cannot sit in the
// kernel's buffers. closed is closed when the gateway's side of the
// connection is.
func smallBufferConn(t *testing.T, tg *testGateway) (c net.Conn, closed <-chan struct{}) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); cerr != nil {
			return cerr
		}
		return err
	}}
	mux := http.NewServeMux()
	tg.g.Mount(mux)
	srv := httptest.NewUnstartedServer(mux)
	tg.g.ConfigureServer(srv.Config)
	ln := smallSendBuffers{Listener: srv.Listener, closed: make(chan struct{})}
	srv.Listener = tg.g.LimitListener(ln)
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := d.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ln.closed
}

// smallSendBuffers sets a 4 KiB send buffer on the connections it accepts,
// and closes closed when the first of them is closed.
type smallSendBuffers struct {
	net.Listener
	closed chan struct{}
}

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(4096); err != nil {
			c.Close()
			return nil, fmt.Errorf("setting the send buffer: %w", err)
		}
	}
	return &closeNotice{Conn: c, closed: l.closed}, nil
}

// closeNotice closes closed when its connection is first closed.
type closeNotice struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *closeNotice) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
