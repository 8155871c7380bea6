package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpstream/mcpstream/bridge"
	"github.com/mcpstream/mcpstream/internal/testkit"
)

// stdioClient drives a Bridge as a stdio client would: it writes lines to
// the bridge's input and reads the lines the bridge writes back.
type stdioClient struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan string
	done  chan error // Run's error
}

// runBridge runs b on pipes until the test ends.
func runBridge(t *testing.T, b *bridge.Bridge) *stdioClient {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &stdioClient{t: t, in: inW, lines: make(chan string, 16), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := b.Run(ctx, inR, outW)
		_ = outW.Close()
		c.done <- err
	}()
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(c.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, bridge.MaxMessage)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = inW.Close()
		_ = inR.Close()
		_ = outR.Close()
		<-read
	})
	return c
}

// send writes one message line.
func (c *stdioClient) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		c.t.Fatalf("writing to the bridge: %v", err)
	}
}

// answer waits for the next line the bridge writes.
func (c *stdioClient) answer() (string, bool) {
	select {
	case l, ok := <-c.lines:
		return l, ok
	case <-time.After(10 * time.Second):
		return "", false
	}
}

// initialize opens the session: initialize (id 1, revision 2025-06-18),
// its answer, then notifications/initialized.
func (c *stdioClient) initialize() {
	c.t.Helper()
	c.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if line, ok := c.answer(); !ok || !strings.Contains(line, `"protocolVersion":"2025-06-18"`) {
		c.t.Fatalf("initialize: %q", line)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// call sends tools/call echo with text under id and returns the text of
// the result.
func (c *stdioClient) call(id int, text string) string {
	c.t.Helper()
	c.send(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, id, text)
	line, ok := c.answer()
	if !ok {
		c.t.Fatalf("no answer to call %d", id)
	}
	var r struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || len(r.Result.Content) != 1 {
		c.t.Fatalf("answer to call %d: %s (%v)", id, line, err)
	}
	return r.Result.Content[0].Text
}

// TestSessionLost: when the endpoint forgets the session (it answers
// HTTP 404 to the session's id, as after a restart), the bridge ends at
// once with ErrSessionLost instead of answering -32603 and sending the
// stale session id forever: its stdio client sees the server go, and
// starts again with a new session.
func TestSessionLost(t *testing.T) {
	srv := testkit.StartSessionServer(t)
	c := runBridge(t, &bridge.Bridge{URL: srv.URL})
	c.initialize()
	if got := c.call(2, "before"); got != "before" {
		t.Fatalf("echo before: %q", got)
	}
	srv.AwaitInitialized(t)

	srv.Forget()
	c.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"after"}}}`)
	select {
	case err := <-c.done:
		if !errors.Is(err, bridge.ErrSessionLost) {
			t.Fatalf("the bridge ended with %v, want ErrSessionLost", err)
		}
	case <-time.After(10 * time.Second):
		line, _ := c.answer()
		t.Fatalf("the bridge goes on with a session the endpoint forgot; it answered %s", line)
	}
	if line, ok := <-c.lines; ok {
		t.Errorf("after the session was lost the bridge wrote %s", line)
	}

	// The client started again gets a new session.
	c = runBridge(t, &bridge.Bridge{URL: srv.URL})
	c.initialize()
	if got := c.call(2, "again"); got != "again" {
		t.Fatalf("echo on the new session: %q", got)
	}
}

// TestOversizedMessageAnswered: a client's line over MaxMessage is not
// sent on, but answered with -32600 (id null, since it cannot be parsed
// for its id), rather than left without an answer; the bridge then goes
// on with the next message.
func TestOversizedMessageAnswered(t *testing.T) {
	srv := testkit.StartSessionServer(t)
	c := runBridge(t, &bridge.Bridge{URL: srv.URL})
	c.initialize()
	c.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`, strings.Repeat("x", bridge.MaxMessage))
	line, ok := c.answer()
	var m struct {
		ID    any `json:"id"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if !ok || json.Unmarshal([]byte(line), &m) != nil || m.ID != nil || m.Error.Code != -32600 {
		t.Fatalf("answer to an oversized message: %q, want -32600 with a null id", line)
	}
	if got := c.call(3, "after"); got != "after" {
		t.Fatalf("echo after: %q", got)
	}
}
