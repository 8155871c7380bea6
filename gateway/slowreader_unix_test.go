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
	srv.Listener = tg.g.LimitListener(smallSendBuffers{srv.Listener})
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := d.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
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

// smallSendBuffers sets a 4 KiB send buffer on the connections it accepts.
type smallSendBuffers struct{ net.Listener }

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
	return c, nil
}
